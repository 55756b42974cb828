"""The CallRail client, schemas, signature helper and sandbox_calls, against the sandbox."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import time
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.core.management import CommandError, call_command

from integrations.callrail.client import CALL_FIELDS, CallRailClient, RecordingTooLarge
from integrations.callrail.schemas import Call
from integrations.callrail.signature import check_callrail_signature, sign_callrail
from integrations.callrail.webhook_schemas import CallWebhook
from integrations.errors import ProviderError
from integrations.sandbox import scenarios
from integrations.sandbox.config import CREDENTIALS
from integrations.sandbox.management.commands.sandbox_calls import Command as SandboxCalls
from otto.models import CallRailCompany, Company, PhoneNumber
from otto.selectors import callrail_client

ACCOUNT = CREDENTIALS["CALLRAIL_ACCOUNT_ID"]
KEY = "072e77e426f92738a72fe23c4d1953b4"
NEW_YORK = ZoneInfo("America/New_York")


def make_calls(sandbox, count: int = 5, **spec) -> list[dict]:
    body = {"account_id": ACCOUNT, "company_id": "COM0000demo", "count": count, **spec}
    response = httpx.post(f"{sandbox.url}/_sandbox/callrail/calls", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["calls"]


def around_today() -> tuple[datetime.date, datetime.date]:
    today = datetime.datetime.now(NEW_YORK).date()
    return today - datetime.timedelta(days=1), today + datetime.timedelta(days=1)


def client(**overrides) -> CallRailClient:
    made = CallRailClient.from_settings()
    for name, value in overrides.items():
        setattr(made, name, value)
    return made


# --- listing -----------------------------------------------------------------------------


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "offset"])
def test_lists_every_call_across_pages_in_both_pagination_styles(sandbox, relative):
    # given 7 calls and pages of 3
    made = make_calls(sandbox, 7)

    # when
    calls = list(client().iter_calls(*around_today(), per_page=3, relative=relative))

    # then every call comes back once, newest first, over 3 requests
    assert sorted(c.id for c in calls) == sorted(c["id"] for c in made)
    assert [c.start_time for c in calls] == sorted((c.start_time for c in calls), reverse=True)
    requests = sandbox.recorded("callrail.calls.list")
    assert len(requests) == 3
    if relative:
        assert requests[0]["query"]["relative_pagination"] == ["true"]
        assert [r["query"].get("offset") for r in requests] == [None, ["3"], ["6"]]
    else:
        assert [r["query"]["page"] for r in requests] == [["1"], ["2"], ["3"]]
    assert requests[0]["query"]["fields"] == [",".join(CALL_FIELDS)]
    assert requests[0]["headers"]["authorization"] == (
        f'Token token="{CREDENTIALS["CALLRAIL_API_KEY"]}"'
    )


def test_a_date_range_outside_the_calls_returns_nothing(sandbox):
    make_calls(sandbox, 3)
    last_week = datetime.datetime.now(NEW_YORK).date() - datetime.timedelta(days=7)

    assert list(client().iter_calls(last_week, last_week)) == []


def test_an_aware_datetime_window_is_sent_in_utc(sandbox):
    # given calls 3 minutes apart over the last 15 minutes
    make_calls(sandbox, 5)
    now = datetime.datetime.now(datetime.UTC)

    # when
    calls = list(client().iter_calls(now - datetime.timedelta(minutes=10), now))

    # then only the last 3 fall inside, and the window went out in UTC
    assert len(calls) == 3
    query = sandbox.recorded("callrail.calls.list")[0]["query"]
    assert query["time_zone"] == ["UTC"]
    assert query["start_date"][0].startswith((now - datetime.timedelta(minutes=10)).strftime("%Y"))


def test_a_next_page_on_another_host_is_refused(sandbox):
    # given a client that knows the sandbox as "localhost", while next_page says 127.0.0.1
    make_calls(sandbox, 4)
    other_name = client(base_url=sandbox.url.replace("127.0.0.1", "localhost") + "/v3")

    # when / then: the API key is not sent to a host we did not configure
    with pytest.raises(ProviderError) as error:
        list(other_name.iter_calls(*around_today(), per_page=2))
    assert error.value.permanent
    assert "another host" in error.value.detail


# --- one call, recordings --------------------------------------------------------------


def test_gets_one_call_with_the_extra_fields(sandbox):
    made = make_calls(sandbox, 1, scenario="booked", tracking_number="+15555550100")[0]

    call = client().get_call(made["id"])

    scenario = scenarios.SCENARIOS["booked"]
    assert call.id == made["id"]
    assert call.company_id == "COM0000demo"
    assert call.customer_name == scenario.customer_name
    assert call.customer_phone_number == scenario.customer_phone
    assert (call.customer_city, call.customer_state) == ("Somerville", "MA")
    assert call.tracking_phone_number == "+15555550100"
    assert call.answered is True and call.direction == "inbound"
    assert call.duration == round(scenario.duration) == call.recording_duration
    assert call.start_time.tzinfo is not None
    assert call.has_recording
    assert call.tags == [] and call.source == "Google Ads"


def test_a_missed_call_from_a_given_caller_has_that_caller_and_no_recording(sandbox):
    made = make_calls(
        sandbox, 1, missed=True, customer_phone_number="+13125550142", customer_state=""
    )[0]

    call = client().get_call(made["id"])

    assert made["customer_phone_number"] == call.customer_phone_number == "+13125550142"
    assert not call.customer_state
    assert call.answered is False and not call.has_recording


def test_gets_a_call_by_its_legacy_numeric_id(sandbox):
    made = make_calls(sandbox, 1)[0]

    assert client().get_call(str(made["legacy_id"])).id == made["id"]


def download(made_client: CallRailClient, call_id: str, max_bytes: int = 10**6) -> bytes:
    destination = io.BytesIO()
    made_client.download_recording_to(call_id, destination, max_bytes=max_bytes)
    return destination.getvalue()


def test_streams_the_recording_following_the_redirect(sandbox):
    made = make_calls(sandbox, 1, scenario="angry")[0]
    destination = io.BytesIO()

    recording = client().download_recording_to(made["id"], destination, max_bytes=10**6)

    content = destination.getvalue()
    assert content.startswith(b"RIFF")
    assert recording.content_type == "audio/wav"
    assert recording.size == len(content)
    assert recording.sha256 == hashlib.sha256(content).hexdigest()
    assert recording.url.endswith("/media/recordings/angry.wav")
    assert scenarios.scenario_for_audio(content).key == "angry"
    # The media link carries its own access key: our API key never goes there.
    redirect = sandbox.recorded("callrail.media.redirect")
    assert len(redirect) == 1 and "authorization" not in redirect[0]["headers"]


def test_a_recording_over_the_limit_is_refused_without_reading_it_all(sandbox):
    made = make_calls(sandbox, 1, scenario="angry")[0]
    destination = io.BytesIO()

    with pytest.raises(RecordingTooLarge) as error:
        client().download_recording_to(made["id"], destination, max_bytes=1000)

    assert error.value.permanent and "RECORDING_MAX_BYTES" in error.value.detail
    assert len(destination.getvalue()) <= 1000


def test_an_unknown_call_is_a_permanent_404(sandbox):
    with pytest.raises(ProviderError) as error:
        client().get_call("CAL0000000000000000000000000000000")
    assert (error.value.status, error.value.permanent) == (404, True)


@pytest.mark.django_db
def test_a_tenant_key_and_account_take_precedence_over_settings(sandbox):
    # given a tenant with its own CallRail account and API key
    make_calls(sandbox, 2, account_id="ACC-tenant", api_key="tenant-key")
    company = Company.objects.create(
        name="Tenant",
        slug="tenant",
        callrail_account_id="ACC-tenant",
        callrail_api_key="tenant-key",
    )

    # when
    calls = list(callrail_client(company).iter_calls(*around_today()))

    # then
    assert len(calls) == 2
    request = sandbox.recorded("callrail.calls.list")[0]
    assert request["path"] == "/v3/a/ACC-tenant/calls.json"
    assert request["headers"]["authorization"] == 'Token token="tenant-key"'


# --- failures ----------------------------------------------------------------------------


def test_a_429_is_retried_after_retry_after(sandbox):
    made = make_calls(sandbox, 1)[0]
    sandbox.inject("callrail.calls.get", "429", count=1)

    started = time.monotonic()
    assert client().get_call(made["id"]).id == made["id"]

    assert time.monotonic() - started >= 1.0  # the sandbox says Retry-After: 1
    assert len(sandbox.recorded("callrail.calls.get")) == 2


def test_repeated_429s_end_in_a_transient_error(sandbox):
    made = make_calls(sandbox, 1)[0]
    sandbox.inject("callrail.calls.get", "429", count=3)

    with pytest.raises(ProviderError) as error:
        client().get_call(made["id"])

    assert (error.value.status, error.value.permanent) == (429, False)
    assert error.value.retry_after == 1.0
    assert len(sandbox.recorded("callrail.calls.get")) == 3  # 1 + max_retries


def test_a_retry_after_longer_than_max_wait_is_left_to_the_caller(sandbox):
    made = make_calls(sandbox, 1)[0]
    sandbox.inject("callrail.calls.get", "429", count=1)

    with pytest.raises(ProviderError) as error:
        client(max_wait=0.5).get_call(made["id"])

    assert error.value.retry_after == 1.0 and not error.value.permanent
    assert len(sandbox.recorded("callrail.calls.get")) == 1


@pytest.mark.parametrize(
    ("endpoint", "operation"),
    [
        ("callrail.calls.list", lambda c, _: list(c.iter_calls(*around_today()))),
        ("callrail.calls.get", lambda c, call_id: c.get_call(call_id)),
        ("callrail.recording", download),
        ("callrail.media.file", download),
    ],
    ids=["list", "get", "recording-link", "recording-bytes"],
)
def test_a_500_is_transient(sandbox, endpoint, operation):
    made = make_calls(sandbox, 1)[0]
    sandbox.inject(endpoint, "500")

    with pytest.raises(ProviderError) as error:
        operation(client(), made["id"])

    assert (error.value.status, error.value.permanent) == (500, False)


def test_a_timeout_is_transient(sandbox):
    made = make_calls(sandbox, 1)[0]
    sandbox.inject("callrail.calls.get", "timeout", delay_seconds=3)

    started = time.monotonic()
    with pytest.raises(ProviderError) as error:
        client().get_call(made["id"])

    assert not error.value.permanent and "timed out" in error.value.detail
    assert time.monotonic() - started < 2.9  # the 2 s client timeout fired, not the sandbox


def test_a_malformed_body_is_a_clear_error(sandbox):
    sandbox.inject("callrail.calls.list", "malformed")

    with pytest.raises(ProviderError) as error:
        list(client().iter_calls(*around_today()))

    assert "malformed JSON" in error.value.detail and not error.value.permanent


def test_wrong_credentials_are_permanent(sandbox, settings):
    settings.CALLRAIL_API_KEY = "not-the-key"

    with pytest.raises(ProviderError) as error:
        list(client().iter_calls(*around_today()))

    assert (error.value.status, error.value.permanent) == (401, True)


def test_a_missing_key_fails_before_any_request(sandbox, settings):
    settings.CALLRAIL_API_KEY = None

    with pytest.raises(ProviderError, match="API key"):
        CallRailClient.from_settings()
    assert sandbox.recorded() == []


def test_a_connection_error_is_transient(settings):
    settings.CALLRAIL_BASE_URL = "http://127.0.0.1:9/v3"  # discard port: nothing listens
    settings.CALLRAIL_API_KEY, settings.CALLRAIL_ACCOUNT_ID = "key", "ACC1"

    with pytest.raises(ProviderError) as error:
        CallRailClient.from_settings().get_call("CAL1")
    assert not error.value.permanent and "ConnectError" in error.value.detail


# --- schemas -----------------------------------------------------------------------------


def test_call_parsing_is_lenient_about_ids_and_types():
    call = Call.model_validate(
        {
            "id": 766970532,
            "duration": "13",
            "recording_duration": 8,
            "answered": False,
            "voicemail": "true",
            "start_time": "2018-02-19T13:41:00.236-05:00",
            "tags": [{"name": "New Client"}, "Repeat", None],
            "company_id": 155920786,
            "customer_name": "  ",
            "lead_status": "previously_marked_good_lead",
            "something_new": {"x": 1},
        }
    )
    assert call.id == "766970532" and call.company_id == "155920786"
    assert (call.duration, call.recording_duration) == (13, 8)
    assert call.voicemail is True and call.answered is False
    assert call.tags == ["New Client", "Repeat"]
    assert call.customer_name is None
    assert call.start_time.utcoffset() == datetime.timedelta(hours=-5)


def test_call_parsing_reads_odd_optional_values_as_missing():
    call = Call.model_validate(
        {"id": "CAL1", "duration": "n/a", "recording_duration": "", "start_time": "yesterday"}
    )
    assert (call.duration, call.recording_duration, call.start_time) == (None, None, None)


@pytest.mark.parametrize("body", [{}, {"id": ""}, {"id": None}])
def test_a_call_without_an_id_is_rejected(body):
    with pytest.raises(ValueError):
        Call.model_validate(body)


# --- signatures and the sandbox's webhooks ----------------------------------------------


def test_signature_round_trip_and_failures():
    body = b'{"id":766970532,"resource_id":"CAL1"}'
    signature = sign_callrail(body, KEY)

    assert check_callrail_signature(body, signature, KEY)
    assert not check_callrail_signature(body, signature, "another-key")
    assert not check_callrail_signature(body, signature[:-4], KEY)  # truncated header
    assert not check_callrail_signature(body + b" ", signature, KEY)  # tampered body
    assert not check_callrail_signature(body, None, KEY)
    assert not check_callrail_signature(body, signature, "")


def test_post_call_webhooks_verify_with_the_apps_function(sandbox, outbox):
    # when the sandbox creates 8 calls and delivers their webhooks
    made = make_calls(
        sandbox,
        8,
        signing_key=KEY,
        webhook_url="http://testserver/callrail/call.completed",
        tracking_number="+15555550100",
    )

    # then each delivery verifies with the same key, and only with it
    deliveries = outbox.to("/callrail/call.completed")
    assert len(deliveries) == 8 and all(c["status"] == 200 for c in made)
    assert {c["scenario"] for c in made} == set(scenarios.SCENARIOS)
    for delivery, call in zip(deliveries, made, strict=True):
        assert check_callrail_signature(delivery.body, delivery.headers["Signature"], KEY)
        assert not check_callrail_signature(delivery.body, delivery.headers["Signature"], "x")
        assert delivery.headers["Content-Type"] == "application/json"
        payload = json.loads(delivery.body)
        # the legacy shape of providers.md §1.5
        assert payload["id"] == call["legacy_id"] and payload["resource_id"] == call["id"]
        assert isinstance(payload["duration"], str)
        assert payload["company_resource_id"] == "COM0000demo"
        assert isinstance(payload["company_id"], int)
        assert payload["trackingnum"] == payload["tracking_phone_number"] == "+15555550100"
        # and the app's own webhook schema reads the call id to fetch
        assert CallWebhook.model_validate_json(delivery.body).call_id == call["id"]


# --- manage.py sandbox_calls -------------------------------------------------------------
# Called through the command object: ``integrations.sandbox`` is not in INSTALLED_APPS yet,
# so Django cannot find the command by name (see the report).


@pytest.fixture
def demo(db):
    company = Company.objects.create(
        name="Acme HVAC (demo)",
        slug="demo",
        callrail_account_id=ACCOUNT,
        callrail_signing_key=KEY,
    )
    CallRailCompany.objects.create(company=company, callrail_company_id="COM0000demo")
    PhoneNumber.objects.create(
        company=company, number="+15555550100", kind=PhoneNumber.Kind.TRACKING
    )
    return company


def test_sandbox_calls_delivers_signed_webhooks_to_the_app(sandbox, outbox, demo, settings, capsys):
    settings.PUBLIC_BASE_URL = "http://app.test"

    call_command(SandboxCalls(), "--company", "demo", "--count", "3", "--scenario", "booked")

    deliveries = outbox.to("/callrail/call.completed")
    assert [d.url for d in deliveries] == ["http://app.test/callrail/call.completed"] * 3
    for delivery in deliveries:
        assert check_callrail_signature(delivery.body, delivery.headers["Signature"], KEY)
        payload = json.loads(delivery.body)
        assert payload["tracking_phone_number"] == "+15555550100"
        assert payload["customer_name"] == scenarios.SCENARIOS["booked"].customer_name
    out = capsys.readouterr().out
    assert out.count("HTTP 200") == 3 and "3/3 webhook(s) accepted" in out
    # and the app can then fetch the calls from the sandbox's API
    assert len(list(CallRailClient.from_settings().iter_calls(*around_today()))) == 3


def test_sandbox_calls_reports_what_the_app_refused(sandbox, outbox, demo, capsys):
    outbox.status = 404  # e.g. the webhook view is not deployed yet

    call_command(SandboxCalls(), "--company", str(demo.pk), "--count", "2")

    out = capsys.readouterr().out
    assert out.count("HTTP 404") == 2 and "0/2 webhook(s) accepted" in out


def test_sandbox_calls_needs_the_company_settings(sandbox, demo):
    demo.callrail_signing_key = None
    demo.save()

    with pytest.raises(CommandError, match="callrail_signing_key"):
        call_command(SandboxCalls(), "--company", "demo")


def test_sandbox_calls_needs_a_known_company(sandbox, db):
    with pytest.raises(CommandError, match="No company with slug 'nope'"):
        call_command(SandboxCalls(), "--company", "nope")


def test_sandbox_calls_says_when_the_sandbox_is_down(demo, settings):
    settings.SANDBOX, settings.SANDBOX_URL = True, "http://127.0.0.1:9"

    with pytest.raises(CommandError, match="not reachable"):
        call_command(SandboxCalls(), "--company", "demo")
