"""Settings come from the environment, and a bad value stops the process at start-up."""

import json
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from otto import env
from tests.conftest import ROOT

PRINT_SETTINGS = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], "
    "'cache': s.CACHES['default']['BACKEND'], "
    "'cache_location': str(s.CACHES['default']['LOCATION']), "
    "'broker': s.Q_CLUSTER['broker_class'], 'debug': s.DEBUG, 'routes': s.QUEUE_ROUTES, "
    "'alt': s.Q_CLUSTER['ALT_CLUSTERS'], 'throttle': s.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'], "
    "'openai': s.OPENAI_BASE_URL, 'twilio_token': s.TWILIO_AUTH_TOKEN, "
    "'bland_secret': s.BLAND_WEBHOOK_SECRET}))"
)


PRINT_DATABASE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "d = s.DATABASES['default']; print(json.dumps({'pool': d.get('OPTIONS', {}).get('pool'), "
    "'max_age': d.get('CONN_MAX_AGE'), 'health_checks': d.get('CONN_HEALTH_CHECKS')}))"
)


def start_django(code: str = PRINT_SETTINGS, **overrides: str) -> subprocess.CompletedProcess:
    environment = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "otto.settings",
        "ENVIRONMENT": "development",
        **overrides,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={key: value for key, value in environment.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RATE_LIMIT_USER", "abc"),
        ("RATE_LIMIT_TENANT", "10 per minute"),
        ("ENVIRONMENT", "qa"),
        ("ENABLE_RATE_LIMITING", "maybe"),
        ("Q_WORKERS", "zero"),
        ("Q_ROUTES", "transcription=asr"),
        ("SENTRY_TRACES_SAMPLE_RATE", "2"),
        ("LOG_LEVEL", "LOUD"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("DATABASE_POOL_SIZE", "-1"),
        ("DATABASE_STATEMENT_TIMEOUT", "soon"),
    ],
)
def test_a_bad_value_fails_at_start_up_naming_the_variable(variable, value):
    result = start_django(**{variable: value})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = start_django(ENVIRONMENT="production")

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


KEY = "Qm1TZ3N3c0VqT2RnbW5aV2lQdE1kYnRhUHBZc3dSTk0="


def test_production_refuses_to_start_without_an_encryption_key():
    result = start_django(ENVIRONMENT="production", SECRET_KEY="x" * 50)

    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY must be set" in result.stderr


def test_an_invalid_encryption_key_fails_without_echoing_it():
    result = start_django(FIELD_ENCRYPTION_KEY="not-a-fernet-key")

    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY" in result.stderr
    assert "not-a-fernet-key" not in result.stderr


def test_sandbox_points_every_provider_at_it_and_fills_unset_credentials():
    result = start_django(
        SANDBOX="1", TWILIO_AUTH_TOKEN="mine", OPENAI_BASE_URL="https://api.openai.com/v1"
    )

    assert result.returncode == 0, result.stderr
    assert '"openai": "http://127.0.0.1:8001/v1"' in result.stdout
    assert '"twilio_token": "mine"' in result.stdout
    assert '"bland_secret": "sandbox-bland-webhook-secret"' in result.stdout


def test_a_secret_is_not_echoed_in_the_error():
    result = start_django(SECRET_KEY="s3cr3t value")

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert "s3cr3t" not in result.stderr


def test_without_database_or_redis_it_runs_on_the_embedded_default():
    result = start_django()

    assert result.returncode == 0, result.stderr
    assert '"engine": "django.db.backends.sqlite3"' in result.stdout
    assert '"cache": "django.core.cache.backends.filebased.FileBasedCache"' in result.stdout
    assert '"broker": "otto.brokers.OrmBroker"' in result.stdout
    assert '"debug": true' in result.stdout


def test_with_postgres_and_redis_the_cache_uses_the_next_redis_database():
    result = start_django(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
        REDIS_URL="redis://127.0.0.1:6379/3",
        RATE_LIMIT_USER="5/second",
    )

    assert result.returncode == 0, result.stderr
    assert '"engine": "django.db.backends.postgresql"' in result.stdout
    assert '"broker": "otto.brokers.RedisBroker"' in result.stdout
    assert '"cache_location": "redis://127.0.0.1:6379/4"' in result.stdout
    assert '"user": "5/second"' in result.stdout


def database_settings(**overrides: str) -> dict:
    result = start_django(PRINT_DATABASE, **overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_pool_size_pools_postgres_connections_without_per_request_health_checks():
    found = database_settings(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test", DATABASE_POOL_SIZE="4"
    )

    # Django refuses a pool with persistent connections; the pool replaces SELECT 1.
    assert found == {
        "pool": {"min_size": 1, "max_size": 4, "timeout": 10},
        "max_age": 0,
        "health_checks": False,
    }


def test_without_a_pool_size_postgres_connections_persist_with_health_checks():
    found = database_settings(DATABASE_URL="postgres://postgres@127.0.0.1:5432/test")

    assert found == {"pool": None, "max_age": 600, "health_checks": True}


def test_the_embedded_sqlite_default_ignores_the_pool_size():
    # otto/web.py (and gunicorn.conf.py) sets DATABASE_POOL_SIZE for `make run` too, on SQLite.
    found = database_settings(DATABASE_POOL_SIZE="4")

    assert found["pool"] is None


SHOW_STATEMENT_TIMEOUT = (
    "import django; django.setup(); from django.db import connection; "
    "c = connection.cursor(); c.execute('SHOW statement_timeout'); print(c.fetchone()[0])"
)


@pytest.mark.parametrize("pool", ["0", "4"])
def test_a_statement_timeout_reaches_every_postgres_connection(pool):
    result = start_django(
        SHOW_STATEMENT_TIMEOUT,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
        DATABASE_POOL_SIZE=pool,
        DATABASE_STATEMENT_TIMEOUT="25",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "25s"


def test_without_one_statements_run_unlimited():
    result = start_django(
        SHOW_STATEMENT_TIMEOUT, DATABASE_URL="postgres://postgres@127.0.0.1:5432/test"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0"


def test_the_web_process_sets_the_statement_timeout_and_keeps_an_operators():
    code = (
        "import os; from otto.web import server; server('127.0.0.1', 8080); "
        "print(os.environ['DATABASE_STATEMENT_TIMEOUT'])"
    )
    assert start_django(code).stdout.strip() == "25"
    assert start_django(code, DATABASE_STATEMENT_TIMEOUT="60").stdout.strip() == "60"


def test_q_routes_gives_routed_queues_their_own_cluster_without_a_scheduler():
    result = start_django(Q_ROUTES="asr=asr,analysis=heavy,uwc=heavy")

    assert result.returncode == 0, result.stderr
    assert '"asr": "asr", "analysis": "heavy"' in result.stdout
    assert '"default": "default"' in result.stdout
    assert '"asr": {"scheduler": false}' in result.stdout
    assert '"heavy": {"scheduler": false}' in result.stdout


def test_debug_is_off_outside_development():
    result = start_django(ENVIRONMENT="staging", SECRET_KEY="x" * 50, FIELD_ENCRYPTION_KEY=KEY)

    assert result.returncode == 0, result.stderr
    assert '"debug": false' in result.stdout


class TestEnvHelpers:
    def test_bool(self, monkeypatch):
        monkeypatch.setenv("FLAG", "Yes")
        assert env.env_bool("FLAG") is True
        monkeypatch.setenv("FLAG", "off")
        assert env.env_bool("FLAG", True) is False
        monkeypatch.delenv("FLAG")
        assert env.env_bool("FLAG", True) is True

    def test_int_with_minimum(self, monkeypatch):
        monkeypatch.setenv("COUNT", "0")
        with pytest.raises(ImproperlyConfigured, match="COUNT"):
            env.env_int("COUNT", 1, minimum=1)

    def test_list_drops_blanks(self, monkeypatch):
        monkeypatch.setenv("ORIGINS", " https://a.example , ,https://b.example")
        assert env.env_list("ORIGINS") == ["https://a.example", "https://b.example"]

    def test_mapping_rejects_a_repeated_key(self, monkeypatch):
        monkeypatch.setenv("ROUTES", "asr=a,asr=b")
        with pytest.raises(ImproperlyConfigured, match="repeats"):
            env.env_mapping("ROUTES")

    def test_mapping_rejects_a_pair_without_a_value(self, monkeypatch):
        monkeypatch.setenv("ROUTES", "asr=")
        with pytest.raises(ImproperlyConfigured, match="key=value"):
            env.env_mapping("ROUTES")

    @pytest.mark.parametrize("rate", ["60/minute", "1/s", "1000/day"])
    def test_rate_accepts_drf_rates(self, monkeypatch, rate):
        monkeypatch.setenv("RATE", rate)
        assert env.env_rate("RATE", "1/minute") == rate
