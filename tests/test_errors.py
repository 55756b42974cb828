"""Every error the API gives has one JSON shape, and a 500 leaks nothing."""

import time

import pytest
from django.core.cache import cache
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]


def assert_error_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response["X-Request-ID"]
    return error


def test_an_unknown_api_url_is_a_json_404(client):
    assert_error_shape(client.get("/api/v1/nothing-here/"), 404, "not_found")


@pytest.mark.parametrize("path", ["/health/nothing", "/callrail/unknown", "/webhooks/unknown"])
def test_unknown_urls_outside_the_admin_are_json_404s(client, path):
    assert_error_shape(client.get(path), 404, "not_found")


def test_the_admin_keeps_its_html_404(admin_client):
    response = admin_client.get("/admin/otto/nothing-here/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_validation_error_lists_each_bad_field(client):
    response = client.post(
        "/api/v1/probe/validate", {"duration_seconds": -3}, content_type="application/json"
    )

    error = assert_error_shape(response, 400, "validation_error")
    assert set(error["details"]) == {"phone", "duration_seconds"}


def test_a_non_json_body_sent_to_a_json_endpoint_is_a_400(client):
    response = client.post(
        "/api/v1/probe/validate", "phone=1&duration_seconds=", content_type="application/json"
    )

    assert_error_shape(response, 400, "parse_error")


def test_an_unsupported_content_type_is_a_415(client):
    response = client.post("/api/v1/probe/validate", "<xml/>", content_type="application/xml")

    assert_error_shape(response, 415, "unsupported_media_type")


def test_an_unhandled_exception_is_a_json_500_without_a_stack_trace():
    client = Client(raise_request_exception=False)

    response = client.get("/api/v1/probe/crash")

    assert_error_shape(response, 500, "server_error")
    body = response.content.decode()
    assert "Traceback" not in body
    assert "hunter2" not in body
    assert "RuntimeError" not in body


def test_a_statement_past_the_timeout_is_a_json_503_and_the_next_request_works(client):
    started = time.monotonic()
    response = client.get("/api/v1/probe/slow")

    error = assert_error_shape(response, 503, "query_timeout")
    assert "try again" in error["message"]
    assert "pg_sleep" not in response.content.decode()
    assert time.monotonic() - started < 4  # cancelled, not waited out
    assert client.get("/api/v1/probe/limited").status_code == 200


def test_an_anonymous_caller_gets_a_json_401(client):
    assert_error_shape(client.get("/api/v1/probe/private"), 401, "not_authenticated")


def test_a_throttled_request_is_a_429_with_retry_after(client):
    cache.clear()
    assert client.get("/api/v1/probe/limited").status_code == 200

    response = client.get("/api/v1/probe/limited")

    error = assert_error_shape(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert error["details"]["retry_after_seconds"] > 0


def test_a_wrong_method_is_a_json_405(client):
    assert_error_shape(client.delete("/api/v1/probe/validate"), 405, "method_not_allowed")


def test_the_callers_request_id_is_echoed_and_an_unsafe_one_replaced(client):
    assert client.get("/health", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"

    replaced = client.get("/health", HTTP_X_REQUEST_ID="bad id\ninjected")["X-Request-ID"]
    assert replaced != "bad id\ninjected"
    assert len(replaced) == 32
