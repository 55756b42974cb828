"""Error responses carry the CORS headers too, or the browser hides them from the app."""

from types import SimpleNamespace

import pytest
from django_ratelimit import core as ratelimit_core

ORIGIN = "https://app.otto.example"


@pytest.fixture
def cors(settings):
    settings.ALLOWED_ORIGINS = [ORIGIN]
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]


def assert_cors(response, status: int) -> None:
    assert response.status_code == status
    assert response["Access-Control-Allow-Origin"] == ORIGIN


def test_a_success_carries_cors_headers(cors, acme_manager):
    assert_cors(acme_manager.client().get("/api/v1/me/", HTTP_ORIGIN=ORIGIN), 200)


def test_a_401_carries_cors_headers(cors, clerk, db):
    response = clerk.client("not.a.jwt").get("/api/v1/me/", HTTP_ORIGIN=ORIGIN)

    assert_cors(response, 401)


def test_a_403_carries_cors_headers(cors, clerk, acme):
    token = clerk.token(sub="user_x", org_id=acme.clerk_org_id, org_role="member")

    assert_cors(clerk.client(token).get("/api/v1/me/", HTTP_ORIGIN=ORIGIN), 403)


def test_a_429_carries_cors_headers(cors, acme_manager, settings, monkeypatch):
    monkeypatch.setattr(ratelimit_core, "time", SimpleNamespace(time=lambda: 1_800_000_000.0))
    settings.RATE_LIMIT_USER = "1/minute"
    client = acme_manager.client()
    client.get("/api/v1/me/", HTTP_ORIGIN=ORIGIN)

    assert_cors(client.get("/api/v1/me/", HTTP_ORIGIN=ORIGIN), 429)


def test_a_500_carries_cors_headers(cors, client, settings):
    settings.ROOT_URLCONF = "tests.urls"
    client.raise_request_exception = False

    assert_cors(client.get("/api/v1/probe/crash", HTTP_ORIGIN=ORIGIN), 500)


def test_an_unknown_origin_gets_no_cors_headers(cors, acme_manager):
    response = acme_manager.client().get("/api/v1/me/", HTTP_ORIGIN="https://evil.example")

    assert "Access-Control-Allow-Origin" not in response
