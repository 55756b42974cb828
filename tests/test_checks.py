"""`manage.py check --deploy` refuses an unsafe production configuration."""

import re

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

SAFE_PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": "9fQ2-vX7kLr0pZ4sT8wYb1nM6cH3jD5gA0eU7iO2qR9tK4lW",
    "ALLOWED_ORIGINS": ["https://app.example.com"],
    "USING_SQLITE": False,
    "REDIS_URL": "redis://redis.internal:6379/0",
    "SANDBOX": False,
    "CLERK_ISSUER": "",
    "TWILIO_ACCOUNT_SID": "",
    "UWC_BASE_URL": "",
    "BLAND_API_KEY": "",
}


def deploy_check_ids(**overrides) -> set[str]:
    with override_settings(**{**SAFE_PRODUCTION, **overrides}):
        try:
            call_command("check", "--deploy", "--fail-level", "ERROR")
        except SystemCheckError as error:
            return set(re.findall(r"\((otto\.E\d+)\)", str(error)))
    return set()


def test_a_safe_production_configuration_passes():
    assert deploy_check_ids() == set()


@pytest.mark.parametrize(
    ("overrides", "check_id"),
    [
        ({"SECRET_KEY": "insecure-development-key-do-not-deploy"}, "otto.E001"),
        ({"SECRET_KEY": "short"}, "otto.E001"),
        ({"ALLOWED_ORIGINS": ["*"]}, "otto.E002"),
        ({"ALLOWED_ORIGINS": ["http://app.example.com"]}, "otto.E002"),
        ({"USING_SQLITE": True}, "otto.E003"),
        ({"REDIS_URL": ""}, "otto.E004"),
        ({"SANDBOX": True}, "otto.E005"),
        ({"CLERK_ISSUER": "https://clerk.example.com", "CLERK_WEBHOOK_SECRET": None}, "otto.E006"),
        ({"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": ""}, "otto.E006"),
        ({"UWC_BASE_URL": "https://uwc.example.com", "UWC_HMAC_SECRET": None}, "otto.E006"),
        ({"BLAND_API_KEY": "key", "BLAND_WEBHOOK_SECRET": None}, "otto.E006"),
    ],
)
def test_an_unsafe_production_setting_fails_the_deploy_check(overrides, check_id):
    assert check_id in deploy_check_ids(**overrides)


def test_a_configured_provider_with_its_webhook_secret_passes():
    assert (
        deploy_check_ids(
            CLERK_ISSUER="https://clerk.example.com", CLERK_WEBHOOK_SECRET="whsec_Zm9vYmFyYmF6"
        )
        == set()
    )


def test_development_may_run_on_sqlite_without_redis():
    assert deploy_check_ids(ENVIRONMENT="development", USING_SQLITE=True, REDIS_URL="") == set()
