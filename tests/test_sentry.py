"""What reaches Sentry is masked like the logs: real events, captured by the SDK's own
pipeline with the production options (``otto.observability.sentry_options``) and a
transport that keeps the envelopes instead of sending them."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import sentry_sdk

from otto.observability import scrub_event, sentry_options
from tests.conftest import wait_for

CARD = "4111 1111 1111 1111"
PHONE = "+17205550142"
SSN = "123-45-6789"
RAW = (CARD, "4111111111111111", PHONE, "720-555-0142", SSN)


class CapturingTransport(sentry_sdk.transport.Transport):
    def __init__(self, options=None):
        super().__init__(options)
        self.items: list[tuple[str, dict]] = []

    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.type in ("event", "transaction"):
                self.items.append((item.type, item.payload.json))

    def of(self, kind: str) -> list[dict]:
        return [payload for item_type, payload in self.items if item_type == kind]


@pytest.fixture
def sentry():
    """Sentry initialised exactly as production does, sending into a list."""
    transport = CapturingTransport()
    options = sentry_options("https://key@sentry.invalid/1", "test", traces_sample_rate=1.0)
    sentry_sdk.init(**options, transport=transport)
    try:
        yield transport
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()


def assert_masked(payload: dict) -> str:
    text = json.dumps(payload)
    for raw in RAW:
        assert raw not in text, raw
    return text


def pipeline_stage(transcript: str, customer: str) -> None:
    # Locals a pipeline frame would hold: raw text, a provider payload.
    payload = {"customer_number": customer, "transcript": transcript}
    raise RuntimeError(f"could not store the transcript of {customer}: {len(payload)}")


def test_an_exception_event_is_masked_everywhere(sentry):
    logger = logging.getLogger("calls.transcription")
    with sentry_sdk.new_scope() as scope:
        # given PII in a log breadcrumb, a manual breadcrumb, extra, a tag and a context
        logger.warning("caller %s read out card %s", PHONE, CARD)
        sentry_sdk.add_breadcrumb(
            category="shunya", message=f"ssn {SSN} heard", data={"phone": PHONE}
        )
        scope.set_extra("transcript", f"my card is {CARD} and my ssn is {SSN}")
        scope.set_tag("caller", PHONE)
        scope.set_context("call", {"customer_number": PHONE})
        # when a pipeline stage raises with PII in its message and its locals
        try:
            pipeline_stage(f"card {CARD}, ssn {SSN}", PHONE)
        except RuntimeError:
            sentry_sdk.capture_exception()

    # then the event arrives with every value masked
    [event] = sentry.of("event")
    text = assert_masked(event)
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"].startswith("could not store the transcript of [phone]")
    assert event["extra"]["transcript"] == "my card is [card] and my ssn is [ssn]"
    assert event["tags"]["caller"] == "[phone]"
    assert event["contexts"]["call"] == {"customer_number": "[phone]"}
    crumbs = {crumb.get("category"): crumb for crumb in event["breadcrumbs"]["values"]}
    assert crumbs["calls.transcription"]["message"] == "caller [phone] read out card [card]"
    assert crumbs["shunya"]["message"] == "ssn [ssn] heard"
    assert crumbs["shunya"]["data"] == {"phone": "[phone]"}
    # and no frame carries its local variables
    frames = exception["stacktrace"]["frames"]
    assert [f["function"] for f in frames][-1] == "pipeline_stage"
    assert all("vars" not in frame for frame in frames)
    assert "pipeline_stage" in text  # code locations are kept


def test_a_message_event_with_request_data_is_masked(sentry):
    request = {
        "url": f"https://otto.example/api/v1/contacts/?phone={PHONE}",
        "method": "POST",
        "query_string": f"phone={PHONE}&ssn={SSN}",
        "headers": {"X-Caller": PHONE, "User-Agent": "CallRail"},
        "data": {"customer_phone_number": PHONE, "note": f"card {CARD}"},
    }
    sentry_sdk.capture_event(
        {
            "message": f"webhook from {PHONE} refused",
            "logentry": {"message": "webhook from %s", "params": [PHONE]},
            "request": request,
        }
    )

    [event] = sentry.of("event")
    assert_masked(event)
    assert event["request"]["query_string"] == "phone=[phone]&ssn=[ssn]"
    assert event["request"]["headers"] == {"X-Caller": "[phone]", "User-Agent": "CallRail"}
    assert event["request"]["url"] == "https://otto.example/api/v1/contacts/?phone=[phone]"
    assert event["logentry"]["params"] == ["[phone]"]
    # the SDK itself drops request bodies (max_request_body_size="never"); where one is
    # present, the scrubber masks it too
    body = {"customer_phone_number": PHONE, "note": f"card {CARD}"}  # the SDK mutated ours
    assert scrub_event({"request": {"data": body}})["request"]["data"] == {
        "customer_phone_number": "[phone]",
        "note": "card [card]",
    }


def test_a_crashing_request_reaches_sentry_masked(sentry, live_server, settings):
    # the live server runs Django's WSGIHandler, whose request data Sentry attaches
    settings.ROOT_URLCONF = "tests.urls"
    url = f"{live_server.url}/api/v1/probe/crash?phone={PHONE}&card={CARD.replace(' ', '')}"

    response = httpx.get(url, headers={"X-Caller": PHONE})

    assert response.status_code == 500
    wait_for(lambda: sentry.of("event") and sentry.of("transaction"), timeout=10)
    [event] = sentry.of("event")
    assert_masked(event)
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["request"]["query_string"] == "phone=[phone]&card=[card]"
    assert event["request"]["headers"]["X-Caller"] == "[phone]"
    [transaction] = sentry.of("transaction")
    assert_masked(transaction)


def test_ids_and_timestamps_are_left_as_they_are(sentry):
    event_id = sentry_sdk.capture_message(f"call from {PHONE}")

    [event] = sentry.of("event")
    assert event["event_id"] == event_id
    assert event["message"] == "call from [phone]"
    assert event["timestamp"].startswith("20")
