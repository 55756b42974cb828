import pytest
from django.test import override_settings
from django_q.conf import Conf

from otto.queues import reset_brokers

pytestmark = pytest.mark.django_db

UNREACHABLE_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 1},
    }
}


def test_liveness_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_reports_each_check(client):
    response = client.get("/health/ready")

    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) == {"database", "broker", "cache", "migrations"}
    assert all(check["ok"] for check in checks.values())


def test_readiness_is_503_when_the_broker_is_unreachable(client, monkeypatch):
    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:1/0")
    reset_brokers()

    response = client.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"] == {"ok": False, "error": "ConnectionError"}
    assert body["checks"]["database"]["ok"] is True
    # The error names the failure, never the internal address.
    assert "127.0.0.1" not in response.content.decode()


@override_settings(CACHES=UNREACHABLE_CACHE)
def test_readiness_is_503_when_the_cache_is_unreachable(client):
    response = client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["cache"]["ok"] is False


def test_readiness_is_503_while_migrations_are_pending(client, monkeypatch):
    from otto import health

    monkeypatch.setattr(health, "_migrations_applied", False)
    monkeypatch.setattr(
        "django.db.migrations.executor.MigrationExecutor.migration_plan",
        lambda self, targets: [("otto", "0002_pending")],
    )

    response = client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == {"ok": False, "error": "RuntimeError"}


def test_health_workers_is_503_when_the_broker_is_unreachable(client, monkeypatch):
    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:1/0")
    reset_brokers()

    response = client.get("/health/workers")

    assert response.status_code == 503
    assert response.json()["clusters"]["default"]["depth"] is None


@override_settings(CACHES=UNREACHABLE_CACHE)
def test_health_workers_is_503_when_cluster_state_cannot_be_read(client):
    response = client.get("/health/workers")

    assert response.status_code == 503
    assert response.json()["clusters"]["default"]["error"] == "ConnectionError"
