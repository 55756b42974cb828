"""Deployment invariants, run by ``manage.py check --deploy`` (CI runs it production-like).

Each check fails only with ``ENVIRONMENT=production``: development and staging may run on
SQLite and without Redis. DEBUG needs no check of ours: settings derive it from
ENVIRONMENT, so it cannot be on in production.
"""

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

PLACEHOLDER_MARKERS = ("insecure", "change-me", "changeme", "placeholder", "example", "test")


def _production() -> bool:
    return settings.ENVIRONMENT == "production"


def placeholder(value: str | None) -> bool:
    return not value or any(marker in value.lower() for marker in PLACEHOLDER_MARKERS)


def bad_origins(origins: Sequence[str]) -> list[str]:
    """The CORS origins a deployment may not list: a wildcard, or anything but https."""
    return [origin for origin in origins if origin == "*" or urlsplit(origin).scheme != "https"]


@register(Tags.security, deploy=True)
def check_secret_key(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if _production() and (placeholder(settings.SECRET_KEY) or len(settings.SECRET_KEY or "") < 40):
        return [
            Error(
                "SECRET_KEY is missing, a placeholder, or shorter than 40 characters.",
                hint="Generate one: python -c 'import secrets; print(secrets.token_urlsafe(50))'",
                id="otto.E001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_allowed_origins(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if not _production():
        return []
    bad = bad_origins(settings.ALLOWED_ORIGINS)
    if bad:
        return [
            Error(
                f"ALLOWED_ORIGINS must list https origins only; got {', '.join(bad)}.",
                hint="List the frontend's origins, e.g. https://app.example.com.",
                id="otto.E002",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_database(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if _production() and settings.USING_SQLITE:
        return [
            Error(
                "Production runs on SQLite.",
                hint="Set DATABASE_URL to the PostgreSQL database.",
                id="otto.E003",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_redis(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if _production() and not settings.REDIS_URL:
        return [
            Error(
                "Production has no Redis: tasks would go through the database broker.",
                hint="Set REDIS_URL (or UPSTASH_REDIS_URL).",
                id="otto.E004",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_sandbox(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if _production() and settings.SANDBOX:
        return [
            Error(
                "SANDBOX is on in production: every provider points at the local simulator.",
                hint="Unset SANDBOX and SANDBOX_URL.",
                id="otto.E005",
            )
        ]
    return []


# A provider that is configured will call its webhook; without the secret every delivery
# would be refused (or, worse, someone would be tempted to skip verification).
WEBHOOK_SECRETS = {
    # provider switched on by ... : the secret its webhook is verified with
    "CLERK_ISSUER": "CLERK_WEBHOOK_SECRET",
    "TWILIO_ACCOUNT_SID": "TWILIO_AUTH_TOKEN",
    "UWC_BASE_URL": "UWC_HMAC_SECRET",
    "BLAND_API_KEY": "BLAND_WEBHOOK_SECRET",
}


@register(Tags.security, deploy=True)
def check_webhook_secrets(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if not _production():
        return []
    return [
        Error(
            f"{enabled} is set but {secret} is not: that provider's webhooks cannot be verified.",
            hint=f"Set {secret}, or unset {enabled} if the provider is not used.",
            id="otto.E006",
        )
        for enabled, secret in WEBHOOK_SECRETS.items()
        if getattr(settings, enabled) and placeholder(getattr(settings, secret))
    ]


@register(Tags.security, deploy=True)
def check_callrail_single_tenant(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """The deployment-wide CallRail key reads for one named tenant only (docs/env.md)."""
    if not _production():
        return []
    single, key = settings.CALLRAIL_SINGLE_TENANT, settings.CALLRAIL_API_KEY
    if single and (not key or not settings.CALLRAIL_ACCOUNT_ID):
        return [
            Error(
                f"CALLRAIL_SINGLE_TENANT is {single!r} but CALLRAIL_API_KEY or "
                "CALLRAIL_ACCOUNT_ID is not set.",
                hint="Set both, or unset CALLRAIL_SINGLE_TENANT and give the company its own "
                "CallRail key.",
                id="otto.E007",
            )
        ]
    if key and not single:
        return [
            Warning(
                "CALLRAIL_API_KEY is set but CALLRAIL_SINGLE_TENANT is not: the deployment's "
                "key reads for no tenant.",
                hint="Give each company its own CallRail key, or name the one tenant of a "
                "single-tenant deployment in CALLRAIL_SINGLE_TENANT.",
                id="otto.W008",
            )
        ]
    return []
