"""Rate limits: per user and per tenant, atomic in Redis, failing open without it."""

import logging
from types import SimpleNamespace

import pytest
from django_ratelimit import core as ratelimit_core
from prometheus_client import REGISTRY

ME = "/api/v1/me/"


def rate_limit_errors() -> float:
    return REGISTRY.get_sample_value("otto_rate_limit_errors_total", {"scope": "user"}) or 0.0


@pytest.fixture
def frozen_window(monkeypatch):
    """django-ratelimit counts per fixed window; hold its clock so the test never straddles
    a window edge. Redis, the counters and their expiry stay real."""
    now = 1_800_000_000.0
    monkeypatch.setattr(ratelimit_core, "time", SimpleNamespace(time=lambda: now))


def test_the_61st_request_in_a_minute_is_429_with_retry_after(
    acme_manager, settings, frozen_window
):
    settings.RATE_LIMIT_USER = "60/minute"
    client = acme_manager.client()

    statuses = [client.get(ME).status_code for _ in range(60)]
    response = client.get(ME)

    assert statuses == [200] * 60
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_users_of_one_tenant_share_the_tenant_limit(
    acme_manager, acme_csr, globex_manager, settings, frozen_window
):
    settings.RATE_LIMIT_USER = "100/minute"
    settings.RATE_LIMIT_TENANT = "5/minute"
    manager, csr = acme_manager.client(), acme_csr.client()

    statuses = [manager.get(ME).status_code for _ in range(3)]
    statuses += [csr.get(ME).status_code for _ in range(2)]

    assert statuses == [200] * 5
    assert csr.get(ME).status_code == 429
    assert manager.get(ME).status_code == 429
    assert globex_manager.client().get(ME).status_code == 200  # another tenant's own limit


def test_rate_limiting_can_be_switched_off(acme_manager, settings, frozen_window):
    settings.RATE_LIMIT_USER = "2/minute"
    settings.ENABLE_RATE_LIMITING = False
    client = acme_manager.client()

    assert [client.get(ME).status_code for _ in range(5)] == [200] * 5


def test_redis_down_serves_the_request_and_counts_the_failure(acme_manager, settings, caplog):
    client = acme_manager.client()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    settings.RATE_LIMIT_USER = "1/minute"
    before = rate_limit_errors()
    caplog.set_level(logging.WARNING, logger="otto.throttling")

    statuses = [client.get(ME).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert rate_limit_errors() == before + 3
    assert "not checked, request served" in caplog.text
