"""The deployment checklist as code (``manage.py preflight``, DESIGN §9.7).

Each item is a function returning an :class:`Item`: ✓ or ✗, what it found, and a hint
for a ✗. An item that raises is a ✗ naming the exception, so one unreachable service
never hides the rest of the list. Development needs none of the production services;
staging and production need them all, and production also Sentry and S3.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from otto.checks import PLACEHOLDER_MARKERS, bad_origins, placeholder
from otto.health import worker_state
from otto.queues import DEFAULT_CLUSTER, clusters, get_broker
from otto.schedules import unsynced


@dataclass(frozen=True)
class Item:
    name: str
    ok: bool
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _deployed() -> bool:
    return settings.ENVIRONMENT != "development"


def _production() -> bool:
    return settings.ENVIRONMENT == "production"


def _fail(name: str, detail: str, hint: str) -> Item:
    return Item(name, False, detail, hint)


# --- items -----------------------------------------------------------------------------


def env_vars() -> Item:
    name = "env vars"
    if not _deployed():
        return Item(name, True, "development needs none")
    missing = []
    if settings.USING_SQLITE:
        missing.append("DATABASE_URL (PostgreSQL)")
    if not settings.REDIS_URL:
        missing.append("REDIS_URL")
    if urlsplit(settings.PUBLIC_BASE_URL).scheme != "https":
        missing.append("PUBLIC_BASE_URL (https)")
    if not settings.ALLOWED_ORIGINS:
        missing.append("ALLOWED_ORIGINS")
    if not settings.METRICS_TOKEN:
        missing.append("METRICS_TOKEN")
    if _production() and not settings.S3_BUCKET:
        missing.append("S3_BUCKET")
    if settings.SANDBOX:
        missing.append("SANDBOX off")
    if missing:
        return _fail(name, "missing: " + ", ".join(missing), "See docs/env.md for each one.")
    return Item(name, True, f"all set for {settings.ENVIRONMENT}")


def secrets() -> Item:
    name = "secrets"
    if not _deployed():
        return Item(name, True, "development may use placeholders")
    bad = []
    if placeholder(settings.SECRET_KEY) or len(settings.SECRET_KEY or "") < 40:
        bad.append("SECRET_KEY")
    if placeholder(settings.METRICS_TOKEN):
        bad.append("METRICS_TOKEN")
    if bad:
        return _fail(
            name,
            "missing, short or a placeholder: " + ", ".join(bad),
            "Generate one: python -c 'import secrets; print(secrets.token_urlsafe(50))'. "
            f"Values containing {', '.join(PLACEHOLDER_MARKERS)} count as placeholders.",
        )
    return Item(name, True, "SECRET_KEY and METRICS_TOKEN are real")


def cors() -> Item:
    name = "ALLOWED_ORIGINS"
    bad = bad_origins(settings.ALLOWED_ORIGINS)
    if _deployed() and bad:
        return _fail(
            name,
            "not https or a wildcard: " + ", ".join(bad),
            "List the frontend's https origins, e.g. https://app.example.com.",
        )
    return Item(name, True, ", ".join(settings.ALLOWED_ORIGINS) or "none (no browser client)")


def migrations() -> Item:
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in pending[:5])
        return _fail(
            "migrations", f"{len(pending)} not applied ({names})", "Run manage.py migrate."
        )
    return Item("migrations", True, "all applied")


def expected_indexes() -> dict[str, str]:
    """Every index a model declares in ``Meta.indexes``, by name, with its table."""
    return {
        index.name: model._meta.db_table
        for model in apps.get_models()
        if model._meta.managed
        for index in model._meta.indexes
    }


def present_indexes() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
            return {row[0] for row in cursor.fetchall()}
        tables = set(expected_indexes().values())
        return {
            index
            for table in tables
            for index in connection.introspection.get_constraints(cursor, table)
        }


def indexes() -> Item:
    expected = expected_indexes()
    missing = sorted(set(expected) - present_indexes())
    if missing:
        return _fail(
            "indexes",
            "missing: " + ", ".join(f"{name} on {expected[name]}" for name in missing),
            "Run manage.py migrate; if it says nothing to do, the index was dropped by hand: "
            "recreate it from the model's Meta.indexes.",
        )
    return Item("indexes", True, f"{len(expected)} declared, all present")


def broker() -> Item:
    name = "broker"
    if _deployed() and not settings.REDIS_URL:
        return _fail(name, "the database broker", "Set REDIS_URL (or UPSTASH_REDIS_URL).")
    get_broker(DEFAULT_CLUSTER).ping()
    return Item(name, True, "Redis answers" if settings.REDIS_URL else "database broker")


def cache_item() -> Item:
    name = "cache"
    backend = str(settings.CACHES["default"]["BACKEND"])
    if _deployed() and not backend.endswith("RedisCache"):
        return _fail(name, f"{backend} is not shared by every instance", "Set REDIS_URL.")
    key = f"otto:preflight:{uuid.uuid4().hex}"
    cache.set(key, "1", 10)
    found = cache.get(key)
    cache.delete(key)
    if found != "1":
        return _fail(name, "did not return what was just written", "Check the Redis server.")
    return Item(name, True, backend.rsplit(".", 1)[-1] + " reads back")


def schedules() -> Item:
    drift = unsynced()
    if drift:
        return _fail(
            "schedules", "out of sync: " + ", ".join(drift), "Run manage.py sync_schedules."
        )
    return Item("schedules", True, "the Schedule table matches the code")


def _runs_scheduler(cluster: str) -> bool:
    config: dict[str, Any] = settings.Q_CLUSTER
    default = bool(config.get("scheduler", True))
    if cluster == DEFAULT_CLUSTER:
        return default
    alt: dict[str, Any] = config.get("ALT_CLUSTERS", {}).get(cluster, {})
    return bool(alt.get("scheduler", default))


def scheduler() -> Item:
    name = "scheduler"
    running = [cluster for cluster in clusters() if _runs_scheduler(cluster)]
    if len(running) != 1:
        return _fail(
            name,
            f"{len(running)} clusters run the scheduler ({', '.join(running) or 'none'})",
            "Only the default cluster runs it: set scheduler False in every ALT_CLUSTERS entry.",
        )
    cluster_states, _ = worker_state()
    if not cluster_states[running[0]]["alive"]:
        return _fail(
            name,
            f"cluster {running[0]}, which runs the scheduler, is not alive",
            "Start the worker process: python manage.py qcluster.",
        )
    return Item(name, True, f"cluster {running[0]} only")


def queues() -> Item:
    _, states = worker_state()
    unserved = {
        queue: state for queue, state in states.items() if state["status"] not in ("ok", "starting")
    }
    if unserved:
        return _fail(
            "queues",
            "not served: "
            + ", ".join(f"{q} ({s['status']} on {s['cluster']})" for q, s in unserved.items()),
            "Start a cluster for each: Q_CLUSTER_NAME=<cluster> python manage.py qcluster "
            "(never qcluster -n); heartbeats run every minute.",
        )
    return Item("queues", True, f"{len(states)} queues served")


def storage() -> Item:
    name = "storage"
    if _production() and not settings.S3_BUCKET:
        return _fail(name, "recordings would go to local disk", "Set S3_BUCKET and AWS_*.")
    probe = default_storage.save(f"preflight/{uuid.uuid4().hex}.txt", ContentFile(b"preflight"))
    default_storage.delete(probe)
    where = f"s3://{settings.S3_BUCKET}" if settings.S3_BUCKET else "local media/"
    return Item(name, True, f"{where} writable (a probe was put and deleted)")


def sentry() -> Item:
    if _production() and not settings.SENTRY_DSN:
        return _fail("sentry", "SENTRY_DSN is not set", "Set SENTRY_DSN to the project's DSN.")
    return Item("sentry", True, "DSN set" if settings.SENTRY_DSN else "not required here")


@dataclass(frozen=True)
class Provider:
    name: str
    enabled: Callable[[], bool]
    needs: tuple[str, ...]


PROVIDERS = (
    Provider(
        "clerk", lambda: bool(settings.CLERK_ISSUER), ("CLERK_SECRET_KEY", "CLERK_WEBHOOK_SECRET")
    ),
    Provider(
        "twilio",
        lambda: bool(settings.TWILIO_ACCOUNT_SID),
        ("TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"),
    ),
    Provider(
        "callrail",
        lambda: bool(settings.CALLRAIL_API_KEY or settings.CALLRAIL_SINGLE_TENANT),
        ("CALLRAIL_API_KEY", "CALLRAIL_ACCOUNT_ID", "CALLRAIL_SINGLE_TENANT"),
    ),
    Provider("deepgram", lambda: settings.TRANSCRIBER == "deepgram", ("DEEPGRAM_API_KEY",)),
    Provider("openai", lambda: settings.ANALYZER == "openai", ("OPENAI_API_KEYS",)),
    Provider(
        "shunya",
        lambda: (
            bool(settings.UWC_BASE_URL) or "shunya" in (settings.TRANSCRIBER, settings.ANALYZER)
        ),
        ("UWC_BASE_URL", "UWC_API_KEY", "UWC_HMAC_SECRET"),
    ),
    Provider("bland", lambda: bool(settings.BLAND_API_KEY), ("BLAND_WEBHOOK_SECRET",)),
)

_SECRET_SUFFIXES = ("_KEY", "_KEYS", "_SECRET", "_TOKEN")


def _missing(setting: str) -> bool:
    value = getattr(settings, setting)
    if isinstance(value, list):
        return not value or any(placeholder(item) for item in value)
    if setting.endswith(_SECRET_SUFFIXES) and _deployed():
        return placeholder(value)
    return not value


def provider_items() -> list[Item]:
    items = []
    for provider in PROVIDERS:
        if not provider.enabled():
            continue
        name = f"provider {provider.name}"
        missing = [setting for setting in provider.needs if _missing(setting)]
        if missing:
            items.append(
                _fail(
                    name,
                    "missing or a placeholder: " + ", ".join(missing),
                    f"Set {', '.join(missing)} (docs/env.md), or switch {provider.name} off.",
                )
            )
        else:
            items.append(Item(name, True, "keys and webhook secret set"))
    return items


ITEMS: tuple[Callable[[], Item], ...] = (
    env_vars,
    secrets,
    cors,
    migrations,
    indexes,
    broker,
    cache_item,
    schedules,
    scheduler,
    queues,
    storage,
    sentry,
)


def _run(item: Callable[[], Item]) -> Item:
    try:
        return item()
    except Exception as exc:
        name = item.__name__.removesuffix("_item").replace("_", " ")
        return _fail(name, f"{type(exc).__name__}: {exc}"[:300], "See the error; fix and rerun.")


def run() -> list[Item]:
    return [*(_run(item) for item in ITEMS), *provider_items()]


WEBHOOK_URLS = {
    "CallRail (call completed)": "webhook-callrail-call-completed",
    "CallRail (call modified)": "webhook-callrail-call-modified",
    "Twilio (inbound SMS)": "webhook-twilio-inbound",
    "Twilio (status callback)": "webhook-twilio-status",
    "Clerk": "webhook-clerk",
    "Shunya": "webhook-shunya",
}


def webhook_urls() -> dict[str, str]:
    """The public URLs to paste into each provider's console."""
    return {label: settings.PUBLIC_BASE_URL + reverse(name) for label, name in WEBHOOK_URLS.items()}
