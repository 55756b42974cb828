"""The Bland client, its schemas and its signature helper against the sandbox."""

from __future__ import annotations

import json

import httpx
import pytest

from integrations.bland.client import BlandClient
from integrations.bland.schemas import Call, SendCallRequest
from integrations.bland.signature import SIGNATURE_HEADER, check_bland_signature, sign_bland
from integrations.errors import ProviderError
from tests.conftest import wait_for

SECRET = "test-bland-webhook-secret"
BODY = b'{"call_id":"d9cce3f3","status":"completed","corrected_duration":"45"}'
VECTOR = "8e0f9ccd2c6990889f8e3d55514c5daa2f9989bb0dd19bf95fe503f3cccaeb84"


def client() -> BlandClient:
    return BlandClient.from_settings()


def a_call(**overrides) -> SendCallRequest:
    fields = {
        "phone_number": "+12223334444",
        "task": "Follow up on the furnace repair quote and offer a visit.",
        "voice": "maya",
        "first_sentence": "Hi Jane, this is Acme Heating following up.",
        "webhook": "http://testserver/webhooks/bland",
        "metadata": {"lead_id": "42", "company_id": "7"},
        "request_data": {"name": "Jane"},
        "max_duration": 5,
        "from_number": "+17163511654",
    }
    return SendCallRequest(**{**fields, **overrides})


@pytest.fixture
def captured(sandbox):
    deliveries: list[tuple[str, bytes, dict[str, str]]] = []
    sandbox.outbound = lambda url, body, headers: (deliveries.append((url, body, headers)), 200)[1]
    sandbox.state["bland"]["delay"] = 0.05
    return deliveries


def test_send_call_then_fetch_it(sandbox, captured):
    sent = client().send_call(a_call())
    assert sent.status == "success" and sent.call_id

    request = sandbox.recorded("bland.calls.create")[0]
    assert request["headers"]["authorization"] == "sandbox-bland-api-key"  # no "Bearer"
    body = json.loads(request["body"])
    assert body["from"] == "+17163511654" and body["request_data"] == {"name": "Jane"}
    assert "pathway_id" not in body  # unset options are not sent

    call = wait_for(
        lambda: (c := client().get_call(sent.call_id)).completed and c, timeout=3, interval=0.05
    )
    assert call.status == "completed"
    assert call.corrected_duration == 45.0 and call.call_length == 0.75
    assert call.duration_seconds == 45.0
    assert call.from_number == "+17163511654"
    assert call.metadata == {"lead_id": "42", "company_id": "7"}
    assert call.transcripts[0].text == "Hi Jane, this is Acme Heating following up."
    assert "Simulated" in call.summary
    assert httpx.get(call.recording_url).headers["content-type"] == "audio/mpeg"


def test_post_call_webhook_verifies_with_the_app_secret(sandbox, settings, captured):
    sent = client().send_call(a_call())

    wait_for(lambda: captured, timeout=3, interval=0.05)

    url, body, headers = captured[0]
    assert url == "http://testserver/webhooks/bland"
    assert check_bland_signature(body, headers[SIGNATURE_HEADER], settings.BLAND_WEBHOOK_SECRET)
    call = Call.model_validate_json(body)
    assert call.call_id == sent.call_id and call.completed
    assert call.metadata["lead_id"] == "42"


def test_a_call_needs_a_task_or_pathway(sandbox):
    with pytest.raises(ProviderError) as caught:
        client().send_call(a_call(task=None))
    assert caught.value.permanent is True
    assert sandbox.recorded("bland") == []

    assert client().send_call(a_call(task=None, pathway_id="pw_123")).call_id


def test_validation_errors_are_permanent_with_bland_message(sandbox):
    with pytest.raises(ProviderError) as caught:
        client().send_call(a_call(phone_number=""))

    assert caught.value.permanent is True and caught.value.status == 400
    assert "Missing required parameter: phone_number" in caught.value.detail


def test_unknown_call_is_permanent_404(sandbox):
    with pytest.raises(ProviderError) as caught:
        client().get_call("00000000-0000-0000-0000-000000000000")
    assert caught.value.permanent is True and caught.value.status == 404


def test_429_is_retried_once_then_transient(sandbox):
    sandbox.inject("bland.calls.create", "429", count=1)
    assert client().send_call(a_call()).call_id
    assert len(sandbox.recorded("bland.calls.create")) == 2

    sandbox.inject("bland.calls.create", "429", count=2)
    with pytest.raises(ProviderError) as caught:
        client().send_call(a_call())
    assert caught.value.permanent is False and caught.value.status == 429


@pytest.mark.parametrize(("mode", "status"), [("500", 500), ("timeout", None)])
def test_server_errors_and_timeouts_are_transient(sandbox, mode, status):
    sandbox.inject("bland.calls.create", mode, count=1, delay_seconds=3)

    with pytest.raises(ProviderError) as caught:
        client().send_call(a_call())

    assert caught.value.permanent is False and caught.value.status == status


def test_malformed_body_is_a_clear_error(sandbox):
    sandbox.inject("bland.calls.get", "malformed")

    with pytest.raises(ProviderError) as caught:
        client().get_call("00000000-0000-0000-0000-000000000000")

    assert caught.value.permanent is True and "malformed JSON" in caught.value.detail


def test_bad_api_key_is_permanent(sandbox, settings):
    settings.BLAND_API_KEY = "wrong-key"

    with pytest.raises(ProviderError) as caught:
        client().send_call(a_call())

    assert caught.value.permanent is True and caught.value.status == 401


def test_call_object_parses_leniently():
    call = Call.model_validate(
        {
            "call_id": "c1",
            "call_length": "1.5",
            "corrected_duration": "",
            "metadata": None,
            "transcripts": None,
            "brand_new_field": {"x": 1},
        }
    )
    assert call.call_length == 1.5 and call.corrected_duration is None
    assert call.duration_seconds == 90.0
    assert call.metadata == {} and call.transcripts == []
    assert call.model_extra == {"brand_new_field": {"x": 1}}


# --- the signature helper ------------------------------------------------------------


def test_known_vector():
    # printf '%s' "$BODY" | openssl dgst -sha256 -hmac test-bland-webhook-secret
    assert sign_bland(BODY, SECRET) == VECTOR


def test_valid_signature():
    assert check_bland_signature(BODY, sign_bland(BODY, SECRET), SECRET)


def test_signature_over_compact_reserialisation_is_accepted():
    pretty = json.dumps(json.loads(BODY), indent=2).encode()
    assert check_bland_signature(pretty, sign_bland(BODY, SECRET), SECRET)


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(sign_bland(BODY, "wrong-secret"), id="wrong secret"),
        pytest.param(sign_bland(BODY, SECRET)[:63], id="truncated"),
        pytest.param("", id="empty"),
        pytest.param(None, id="missing"),
        pytest.param("sha256=" + sign_bland(BODY, SECRET), id="prefixed"),
    ],
)
def test_rejected_signatures(signature):
    assert not check_bland_signature(BODY, signature, SECRET)


def test_a_changed_body_is_rejected():
    assert not check_bland_signature(BODY.replace(b"45", b"46"), sign_bland(BODY, SECRET), SECRET)
