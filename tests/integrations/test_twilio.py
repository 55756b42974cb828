"""The Twilio client, signature helper, sandbox callbacks and sandbox_sms."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from integrations.errors import ProviderError
from integrations.sandbox.config import CREDENTIALS
from integrations.sandbox.management.commands.sandbox_sms import Command as SandboxSms
from integrations.twilio.client import TwilioClient
from integrations.twilio.signature import (
    check_twilio_request,
    check_twilio_signature,
    public_url,
    sign_twilio,
)
from otto.models import Company
from tests.conftest import wait_for

TOKEN = CREDENTIALS["TWILIO_AUTH_TOKEN"]
CUSTOMER = "+16175550142"

# The published example (providers.md §2.4, Twilio's docs).
VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
VECTOR_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def client() -> TwilioClient:
    return TwilioClient.from_settings()


# --- client ------------------------------------------------------------------------------


def test_sends_an_sms_with_a_status_callback(sandbox, settings):
    settings.PUBLIC_BASE_URL = "https://otto.example.com"

    message = client().send_sms(CUSTOMER, "Hi Dana, this is Acme. Still need that AC repair?")

    assert message.sid.startswith("SM") and message.status == "queued"
    assert (message.to, message.from_) == (CUSTOMER, CREDENTIALS["TWILIO_FROM_NUMBER"])
    assert message.direction == "outbound-api" and message.num_segments == 1
    assert message.date_created is not None and message.date_created.tzinfo is not None
    form = dict(parse_qsl(sandbox.recorded("twilio.messages.create")[0]["body"]))
    assert form["StatusCallback"] == "https://otto.example.com/sms/twilio-status"
    assert form["Body"].startswith("Hi Dana")


def test_fetches_a_message_as_it_progresses(sandbox, outbox):
    sandbox.state["twilio"]["delay"] = 0.05
    sent = client().send_sms(CUSTOMER, "Hello", from_="+15005550006")

    wait_for(lambda: len(outbox.items) == 2, timeout=3, interval=0.02)
    fetched = client().get_message(sent.sid)

    assert fetched.sid == sent.sid and fetched.status == "delivered"
    assert fetched.date_sent is not None


def test_status_callbacks_verify_with_the_apps_helper(sandbox, outbox, settings):
    # given
    settings.PUBLIC_BASE_URL = "http://testserver"
    sandbox.state["twilio"]["delay"] = 0.05

    # when
    sent = client().send_sms(CUSTOMER, "Your technician is on the way.")
    wait_for(lambda: len(outbox.items) == 2, timeout=3, interval=0.02)

    # then: sent, then delivered (no callback for the initial queued, as on Twilio)
    deliveries = outbox.to("/sms/twilio-status")
    params = [dict(parse_qsl(d.body.decode())) for d in deliveries]
    assert [p["MessageStatus"] for p in params] == ["sent", "delivered"]
    assert {p["MessageSid"] for p in params} == {sent.sid}
    factory = RequestFactory()
    for delivery in deliveries:
        signature = delivery.headers["X-Twilio-Signature"]
        assert delivery.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert check_twilio_signature(
            delivery.url, dict(parse_qsl(delivery.body.decode())), signature
        )
        assert not check_twilio_signature(
            delivery.url, dict(parse_qsl(delivery.body.decode())), signature, auth_token="wrong"
        )
        # and through a Django request, with the URL rebuilt from PUBLIC_BASE_URL
        request = factory.post(
            "/sms/twilio-status",
            data=delivery.body,
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": signature},
        )
        assert check_twilio_request(request)


def test_a_429_is_retried(sandbox):
    sandbox.inject("twilio.messages.create", "429", count=1)

    started = time.monotonic()
    message = client().send_sms(CUSTOMER, "Hello")

    assert message.sid.startswith("SM")
    assert time.monotonic() - started >= 1.0  # honours the sandbox's Retry-After: 1
    assert len(sandbox.recorded("twilio.messages.create")) == 2


def test_repeated_429s_end_in_a_transient_error(sandbox):
    sandbox.inject("twilio.messages.get", "429", count=3)

    with pytest.raises(ProviderError) as error:
        client().get_message("SM" + "0" * 32)

    assert (error.value.status, error.value.permanent) == (429, False)
    assert len(sandbox.recorded("twilio.messages.get")) == 3


def test_a_500_is_transient(sandbox):
    sandbox.inject("twilio.messages.create", "500")

    with pytest.raises(ProviderError) as error:
        client().send_sms(CUSTOMER, "Hello")

    assert (error.value.status, error.value.permanent) == (500, False)


def test_a_timeout_is_transient(sandbox):
    sandbox.inject("twilio.messages.create", "timeout", delay_seconds=3)

    started = time.monotonic()
    with pytest.raises(ProviderError) as error:
        client().send_sms(CUSTOMER, "Hello")

    assert not error.value.permanent and "timed out" in error.value.detail
    assert time.monotonic() - started < 2.9


def test_a_malformed_body_is_a_clear_error(sandbox):
    sandbox.inject("twilio.messages.create", "malformed")

    with pytest.raises(ProviderError) as error:
        client().send_sms(CUSTOMER, "Hello")

    assert "malformed JSON" in error.value.detail and not error.value.permanent


def test_wrong_credentials_are_permanent(sandbox, settings):
    settings.TWILIO_AUTH_TOKEN = "not-the-token"

    with pytest.raises(ProviderError) as error:
        client().send_sms(CUSTOMER, "Hello")

    assert (error.value.status, error.value.permanent) == (401, True)
    assert "20003" in error.value.detail


@pytest.mark.parametrize(
    ("to", "code"), [("+15005550001", 21211), ("555-0142", 21211), ("+15005550004", 21610)]
)
def test_twilio_rejections_are_permanent_with_their_code(sandbox, to, code):
    with pytest.raises(ProviderError) as error:
        client().send_sms(to, "Hello")

    assert (error.value.status, error.value.permanent) == (400, True)
    assert str(code) in error.value.detail


def test_an_unknown_message_is_a_permanent_404(sandbox):
    with pytest.raises(ProviderError) as error:
        client().get_message("SM" + "f" * 32)
    assert (error.value.status, error.value.permanent) == (404, True)


def test_missing_credentials_fail_before_any_request(sandbox, settings):
    settings.TWILIO_ACCOUNT_SID = ""

    with pytest.raises(ProviderError, match="TWILIO_ACCOUNT_SID"):
        client()
    assert sandbox.recorded() == []


# --- signature helper --------------------------------------------------------------------


def test_the_published_vector():
    assert sign_twilio(VECTOR_URL, VECTOR_PARAMS, VECTOR_TOKEN) == VECTOR_SIGNATURE
    assert check_twilio_signature(
        VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE, auth_token=VECTOR_TOKEN
    )


def test_a_wrong_token_a_tampered_param_or_a_bad_header_fail():
    assert not check_twilio_signature(
        VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE, auth_token="54321"
    )
    tampered = VECTOR_PARAMS | {"Digits": "9999"}
    assert not check_twilio_signature(VECTOR_URL, tampered, VECTOR_SIGNATURE, auth_token="12345")
    assert not check_twilio_signature(
        VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE[:-3], auth_token="12345"
    )
    assert not check_twilio_signature(VECTOR_URL, VECTOR_PARAMS, None, auth_token="12345")
    other_url = VECTOR_URL.replace("foo=1", "foo=2")
    assert not check_twilio_signature(
        other_url, VECTOR_PARAMS, VECTOR_SIGNATURE, auth_token="12345"
    )


def test_a_request_is_checked_against_the_public_url_not_the_internal_one(settings):
    # given Django sees http://testserver, while Twilio requested the public URL
    settings.PUBLIC_BASE_URL = "https://otto.example.com"
    params = {"From": CUSTOMER, "Body": "Yes", "MessageSid": "SM1"}
    public = sign_twilio("https://otto.example.com/sms/twilio-webhook?x=1", params, "tok")
    internal = sign_twilio("http://testserver/sms/twilio-webhook?x=1", params, "tok")

    def request(signature: str):
        return RequestFactory().post(
            "/sms/twilio-webhook?x=1",
            data=urlencode(params),
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": signature},
        )

    assert (
        public_url("/sms/twilio-webhook?x=1") == "https://otto.example.com/sms/twilio-webhook?x=1"
    )
    assert check_twilio_request(request(public), auth_token="tok")
    assert not check_twilio_request(request(internal), auth_token="tok")


# --- inbound SMS -------------------------------------------------------------------------


def test_the_sandbox_delivers_a_signed_inbound_sms(sandbox, outbox):
    response = httpx.post(
        f"{sandbox.url}/_sandbox/twilio/sms",
        json={"from": CUSTOMER, "to": "+15005550006", "body": "STOP"},
        timeout=5,
    )

    assert response.status_code == 201
    [delivery] = outbox.items
    assert delivery.url == "http://testserver/sms/twilio-webhook"  # the sandbox's app URL
    params = dict(parse_qsl(delivery.body.decode()))
    assert (params["From"], params["To"], params["Body"]) == (CUSTOMER, "+15005550006", "STOP")
    assert params["OptOutType"] == "STOP"
    assert check_twilio_signature(delivery.url, params, delivery.headers["X-Twilio-Signature"])


def test_the_inbound_sms_endpoint_checks_its_input(sandbox, outbox):
    response = httpx.post(
        f"{sandbox.url}/_sandbox/twilio/sms",
        json={"from": "0142", "to": "+15005550006", "body": "hi"},
        timeout=5,
    )
    assert response.status_code == 400 and outbox.items == []


@pytest.fixture
def demo(db):
    return Company.objects.create(
        name="Acme HVAC (demo)", slug="demo", twilio_number="+15005550006"
    )


def test_sandbox_sms_delivers_to_the_companys_number(sandbox, outbox, demo, settings, capsys):
    settings.PUBLIC_BASE_URL = "https://app.test"

    call_command(SandboxSms(), "--company", "demo", "--from", CUSTOMER, "--body", "Tuesday works")

    [delivery] = outbox.to("/sms/twilio-webhook")
    params = dict(parse_qsl(delivery.body.decode()))
    assert delivery.url == "https://app.test/sms/twilio-webhook"
    assert (params["To"], params["Body"]) == ("+15005550006", "Tuesday works")
    request = RequestFactory().post(
        "/sms/twilio-webhook",
        data=delivery.body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": delivery.headers["X-Twilio-Signature"]},
    )
    assert check_twilio_request(request)
    assert "HTTP 200" in capsys.readouterr().out


def test_sandbox_sms_needs_a_twilio_number(sandbox, demo):
    demo.twilio_number = ""
    demo.save()

    with pytest.raises(CommandError, match="no Twilio number"):
        call_command(SandboxSms(), "--company", "demo", "--from", CUSTOMER, "--body", "hi")


def test_sandbox_sms_says_when_the_sandbox_is_down(demo, settings):
    settings.SANDBOX, settings.SANDBOX_URL = True, "http://127.0.0.1:9"

    with pytest.raises(CommandError, match="not reachable"):
        call_command(SandboxSms(), "--company", "demo", "--from", CUSTOMER, "--body", "hi")


def test_sandbox_sms_says_when_the_sandbox_is_off(demo, settings):
    settings.SANDBOX, settings.SANDBOX_URL = False, ""

    with pytest.raises(CommandError, match="sandbox is off"):
        call_command(SandboxSms(), "--company", "demo", "--from", CUSTOMER, "--body", "hi")
