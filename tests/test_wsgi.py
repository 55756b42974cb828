"""The production WSGI handler (otto/wsgi.py): provider webhooks go through the lean
middleware chain, every other route through the full one, and both keep what matters
(request id, metrics, security headers, the ALLOWED_HOSTS check)."""

from __future__ import annotations

import json
import os

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from prometheus_client import REGISTRY

from calls.models import Call
from integrations.callrail.signature import sign_callrail
from integrations.models import WebhookEvent
from otto.handlers import OttoWSGIHandler
from tests.calls.conftest import ACME_COM, ACME_KEY, ACME_LEGACY_COM, configure_callrail
from tests.integrations.fixtures import load

WEBHOOK = "/callrail/call.completed"


@pytest.fixture
def application() -> OttoWSGIHandler:
    return OttoWSGIHandler()


def serve(application, request) -> tuple[int, dict[str, str], bytes]:
    """One request through the WSGI callable, as a WSGI server calls it."""
    started: dict = {}

    def start_response(status, headers):
        started["status"] = int(status.split()[0])
        started["headers"] = {name.lower(): value for name, value in headers}

    # As Django's test client does: the test's transaction must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = application(request.environ, start_response)
        body = b"".join(response)
        response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return started["status"], started["headers"], body


def requests_counted(route: str, status: int) -> float:
    labels = {"route": route, "method": "POST", "status": str(status)}
    return REGISTRY.get_sample_value("otto_http_requests_total", labels) or 0.0


@pytest.mark.django_db
def test_a_webhook_skips_session_csrf_and_framing_middleware_but_keeps_the_rest(application):
    counted = requests_counted("callrail/call.completed", 401)
    request = RequestFactory().post(
        WEBHOOK, data=b"{}", content_type="application/json", HTTP_X_REQUEST_ID="req-lean-1"
    )

    status, headers, body = serve(application, request)

    assert status == 401
    assert json.loads(body)["error"]["code"] == "invalid_signature"
    assert headers["x-request-id"] == "req-lean-1"
    assert headers["x-content-type-options"] == "nosniff"
    assert requests_counted("callrail/call.completed", 401) == counted + 1
    # No session, CSRF or clickjacking middleware ran.
    assert "x-frame-options" not in headers
    assert "vary" not in headers
    assert "set-cookie" not in headers


@pytest.mark.django_db
def test_other_routes_keep_the_full_middleware(application):
    status, headers, _ = serve(application, RequestFactory().get("/health"))

    assert status == 200
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert "x-request-id" in headers


@pytest.mark.django_db
def test_a_webhook_for_a_host_not_allowed_is_refused(application, settings):
    settings.ALLOWED_HOSTS = ["otto.example"]
    request = RequestFactory().post(
        WEBHOOK, data=b"{}", content_type="application/json", HTTP_HOST="evil.example"
    )

    status, _, _ = serve(application, request)

    assert status == 400
    assert not WebhookEvent.objects.exists()


def test_every_webhook_route_is_lean_and_no_other_route_is(settings):
    from integrations.urls import urlpatterns as webhook_patterns

    prefixes = tuple(settings.WEBHOOK_PATH_PREFIXES)
    webhooks = {f"/{pattern.pattern}" for pattern in webhook_patterns}
    assert all(route.startswith(prefixes) for route in webhooks)

    def routes(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from routes(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield "/" + route

    others = set(routes(get_resolver("otto.urls").url_patterns)) - webhooks
    assert others
    assert not [route for route in others if route.startswith(prefixes)]


@pytest.mark.django_db
def test_a_signed_delivery_is_stored_before_its_answer_and_enqueued_on_commit(
    application, acme, django_capture_on_commit_callbacks
):
    configure_callrail(acme, ids=[ACME_LEGACY_COM, ACME_COM], key=ACME_KEY)
    body = json.dumps(load("callrail", "call.completed.answered")).encode()
    request = RequestFactory().post(
        WEBHOOK,
        data=body,
        content_type="application/json",
        HTTP_SIGNATURE=sign_callrail(body, ACME_KEY),
    )

    with django_capture_on_commit_callbacks() as callbacks:
        status, _, answer = serve(application, request)
        stored = list(WebhookEvent.objects.values_list("pk", "company", "status"))

    assert status == 200
    assert json.loads(answer)["status"] == "received"
    assert stored == [(json.loads(answer)["id"], acme.pk, WebhookEvent.Status.RECEIVED)]
    # The processing is pushed when the request's transaction commits, not before.
    assert len(callbacks) == 1
    assert not Call.objects.exists()


def test_a_middleware_with_view_hooks_is_refused_for_the_lean_chain(settings):
    # The lean chain runs no process_view: CSRF's check would silently never happen.
    settings.WEBHOOK_MIDDLEWARE = ["django.middleware.csrf.CsrfViewMiddleware"]

    with pytest.raises(ImproperlyConfigured, match="CsrfViewMiddleware"):
        OttoWSGIHandler()


def test_granian_s_copy_of_the_process_environment_never_reaches_the_request(monkeypatch):
    # granian builds every WSGI environ from os.environ plus the request's own variables.
    from otto.wsgi import _without_process_environment

    monkeypatch.setenv("OTTO_TEST_SECRET", "s3cret")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal")
    monkeypatch.setenv("HTTP_X_TEST", "from-the-environment")
    monkeypatch.setenv("SERVER_PORT", "8080")
    seen: dict = {}

    def app(environ, start_response):
        seen.update(environ)
        return [b""]

    served = _without_process_environment(app)
    request = RequestFactory().get("/health", HTTP_X_TEST="from-the-request").environ
    request["SERVER_PORT"] = "8080"
    served({**os.environ, **request}, lambda *args: None)

    assert "OTTO_TEST_SECRET" not in seen
    assert "HTTP_PROXY" not in seen
    assert "PATH" not in seen
    assert seen["HTTP_X_TEST"] == "from-the-request"
    assert seen["SERVER_PORT"] == "8080"
    assert seen["PATH_INFO"] == "/health"
