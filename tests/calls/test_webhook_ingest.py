"""CallRail webhooks through the real endpoint, processed by ingest: every captured fixture
ends as exactly one Call with its recording, and the signature and tenant rules hold."""

from __future__ import annotations

import copy
import hashlib

import pytest
from django.core.files.storage import default_storage

from calls import services as calls_services
from calls.models import Call
from integrations import services as inbox_services
from integrations.models import WebhookEvent
from integrations.sandbox.config import CREDENTIALS
from otto.crypto import Secret
from otto.models import CallRailCompany, Company, Contact
from tests.calls.conftest import (
    ACCOUNT,
    ACME_KEY,
    GLOBEX_KEY,
    INGEST,
    TRANSCRIBE,
    make_calls,
    sandbox_call,
)
from tests.integrations.fixtures import load, post_callrail

Status = WebhookEvent.Status
Stage = Call.Stage

FIXTURE_CAL = "CAL8154748ae6bd4e278a7cddd38a662f4f"
ANSWERED_CAL = "CAL0000answered0000000000000000001"
OUTBOUND_CAL = "CAL0000outbound0000000000000000001"


def fixture(name: str, **changes) -> dict:
    return copy.deepcopy(load("callrail", name)) | changes


def stored_recording(call: Call) -> bytes:
    with default_storage.open(call.recording.name) as audio:
        return audio.read()


@pytest.mark.parametrize(
    ("name", "event_type", "seed", "expected"),
    [
        pytest.param(
            "call.completed.answered",
            "call.completed",
            {"call_id": ANSWERED_CAL, "legacy_id": 766970532, "scenario": "booked"},
            {"direction": "inbound", "answered": True, "legacy_id": "766970532"},
            id="answered-numeric-id-string-duration",
        ),
        pytest.param(
            "call.completed.voicemail_resource_ids",
            "call.completed",
            {"call_id": FIXTURE_CAL, "scenario": "voicemail"},
            {"direction": "inbound", "answered": False, "voicemail": True},
            id="voicemail-cal-ids",
        ),
        pytest.param(
            "call.completed.outbound_no_company_id",
            "call.completed",
            {
                "call_id": OUTBOUND_CAL,
                "legacy_id": 766970999,
                "scenario": "booked",
                "direction": "outbound",
            },
            {"direction": "outbound", "answered": True, "legacy_id": "766970999"},
            id="outbound-missing-company-id",
        ),
        pytest.param(
            "call.modified",
            "call.modified",
            {"call_id": ANSWERED_CAL, "legacy_id": 766970532, "scenario": "booked"},
            {"direction": "inbound", "answered": True, "legacy_id": "766970532"},
            id="call-modified-first",
        ),
    ],
)
def test_every_fixture_variant_ends_as_one_recorded_call(
    acme_callrail, sandbox, client, run_tasks, name, event_type, seed, expected
):
    # given the call exists in CallRail (the webhook is only a trigger)
    made = make_calls(sandbox, **seed)[0]

    # when CallRail delivers the captured webhook
    with run_tasks() as worker:
        response = post_callrail(client, event_type, fixture(name), ACME_KEY)

    # then one call, from the API's view of it, with its recording in storage
    assert response.status_code == 200, response.content
    event = WebhookEvent.objects.get()
    assert (event.status, event.company) == (Status.PROCESSED, acme_callrail)
    call = Call.objects.get()
    assert call.company == acme_callrail
    assert call.external_id == made["id"]
    assert list(call.webhook_events.all()) == [event]
    assert call.stage == Stage.RECORDED, call.last_error
    for field, value in expected.items():
        assert getattr(call, field) == value, field
    api = sandbox_call(sandbox, made["id"])
    assert call.customer_number == api["customer_phone_number"]
    assert call.customer_name == api["customer_name"]
    assert call.started_at is not None and call.duration_seconds == api["duration"]
    assert call.contact == Contact.objects.get(company=acme_callrail, phone=call.customer_number)
    # the recording: at its path, with size, checksum and content type
    audio = stored_recording(call)
    assert call.recording.name == f"{acme_callrail.pk}/recordings/{call.pk}.mp3"
    assert call.recording_size == len(audio) > 0
    assert call.recording_sha256 == hashlib.sha256(audio).hexdigest()
    assert call.recording_content_type == "audio/wav"
    # and one hand-off to transcription
    assert worker.count(TRANSCRIBE) == 1


def test_call_modified_after_ingest_updates_details_without_a_second_download(
    acme_callrail, sandbox, client, run_tasks
):
    # given an ingested call
    make_calls(sandbox, call_id=ANSWERED_CAL, legacy_id=766970532, scenario="booked")
    with run_tasks() as worker:
        post_callrail(client, "call.completed", fixture("call.completed.answered"), ACME_KEY)
    call = Call.objects.get()
    assert call.stage == Stage.RECORDED
    recorded = (call.recording.name, call.recording_sha256, call.stage_changed_at)

    # when CallRail's copy changes and it sends call.modified
    sandbox_call(sandbox, ANSWERED_CAL).update(note="Wants a quote", tags=["quote"])
    with run_tasks() as worker:
        post_callrail(client, "call.modified", fixture("call.modified"), ACME_KEY)

    # then the details follow; the recording and the hand-off do not happen again
    call.refresh_from_db()
    assert (call.note, call.tags) == ("Wants a quote", ["quote"])
    assert (call.recording.name, call.recording_sha256, call.stage_changed_at) == recorded
    assert call.stage == Stage.RECORDED
    assert call.webhook_events.count() == 2
    assert len(sandbox.recorded("callrail.media.file")) == 1
    assert worker.count(TRANSCRIBE) == 0 and worker.count(INGEST) == 0
    assert Call.objects.count() == 1


def test_a_replayed_delivery_changes_nothing(acme_callrail, sandbox, client, run_tasks):
    make_calls(sandbox, call_id=ANSWERED_CAL, legacy_id=766970532, scenario="booked")
    with run_tasks():
        post_callrail(client, "call.completed", fixture("call.completed.answered"), ACME_KEY)
    before = Call.objects.values().get()

    with run_tasks() as worker:
        again = post_callrail(
            client, "call.completed", fixture("call.completed.answered"), ACME_KEY
        )
        inbox_services.replay_event(WebhookEvent.objects.get())

    assert again.json()["status"] == "duplicate"
    assert Call.objects.values().get() == before
    assert worker.count(TRANSCRIBE) == 0


def test_numeric_and_cal_deliveries_of_one_call_end_as_one_call(
    acme_callrail, sandbox, client, run_tasks
):
    # given the numeric-only delivery was ingested (its row renamed to the CAL… id)
    make_calls(sandbox, call_id=ANSWERED_CAL, legacy_id=766970532, scenario="booked")
    with run_tasks():
        post_callrail(client, "call.completed", fixture("call.completed.answered"), ACME_KEY)

    # when the same call arrives under its CAL… id
    by_resource = fixture("call.completed.answered", resource_id=ANSWERED_CAL)
    with run_tasks() as worker:
        response = post_callrail(client, "call.completed", by_resource, ACME_KEY)

    # then it is another delivery of the same call
    assert WebhookEvent.objects.get(pk=response.json()["id"]).status == Status.PROCESSED
    call = Call.objects.get()
    assert (call.external_id, call.legacy_id) == (ANSWERED_CAL, "766970532")
    assert call.webhook_events.count() == 2
    assert worker.count(TRANSCRIBE) == 0


def test_a_provisional_numeric_row_merges_into_the_cal_row(
    acme_callrail, sandbox, client, run_tasks
):
    # given a numeric-only delivery and a CAL…-only one, both processed, neither ingested
    make_calls(sandbox, call_id=ANSWERED_CAL, legacy_id=766970532, scenario="booked")
    post_callrail(client, "call.completed", fixture("call.completed.answered"), ACME_KEY)
    post_callrail(
        client, "call.completed", fixture("call.completed.answered", id=ANSWERED_CAL), ACME_KEY
    )
    for event in WebhookEvent.objects.order_by("pk"):
        assert inbox_services.process_event(event.pk) == Status.PROCESSED
    provisional = Call.objects.get(external_id="766970532")
    canonical = Call.objects.get(external_id=ANSWERED_CAL)

    # when the provisional one is ingested first (it learns its CAL… id from the API)
    with run_tasks() as worker:
        assert calls_services.ingest_call(provisional.pk) is None  # merged away
    handed_off = worker.count(TRANSCRIBE)
    with run_tasks() as worker:
        assert calls_services.ingest_call(canonical.pk) is None  # already done

    # then one call holds both deliveries, ingested once
    call = Call.objects.get()
    assert call.pk == canonical.pk and call.legacy_id == "766970532"
    assert call.stage == Stage.RECORDED
    assert call.webhook_events.count() == 2
    assert handed_off == 1 and worker.pushed == []


# --- signature and tenancy ----------------------------------------------------------------


def test_a_bad_signature_is_refused_and_nothing_is_stored(acme_callrail, client, run_tasks):
    with run_tasks() as worker:
        response = post_callrail(
            client, "call.completed", fixture("call.completed.answered"), "not-the-key"
        )

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists() and not Call.objects.exists()
    assert worker.pushed == []


def test_another_tenants_signing_key_is_refused(acme_callrail, globex_callrail, client):
    # Acme's CallRail company in the body, signed with Globex's key.
    response = post_callrail(
        client, "call.completed", fixture("call.completed.answered"), GLOBEX_KEY
    )

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists() and not Call.objects.exists()


def test_an_unknown_tenant_is_kept_unmatched_and_a_replay_after_setup_ingests_it(
    db, sandbox, client, run_tasks
):
    # given a delivery for a tenant Otto does not know yet
    made = make_calls(sandbox, call_id=ANSWERED_CAL, legacy_id=766970532, scenario="booked")[0]
    with run_tasks() as worker:
        response = post_callrail(
            client, "call.completed", fixture("call.completed.answered"), ACME_KEY
        )
    # answered like a bad signature (nothing says whether the tenant exists), kept for ops
    assert response.status_code == 401
    event = WebhookEvent.objects.get()
    assert event.status == Status.UNMATCHED
    assert not Call.objects.exists() and worker.pushed == []

    # when ops configure the tenant and replay the event from the admin
    acme = Company.objects.create(
        name="Acme",
        slug="acme",
        callrail_account_id=ACCOUNT,
        callrail_api_key=Secret(CREDENTIALS["CALLRAIL_API_KEY"]),
        callrail_signing_key=Secret(ACME_KEY),
    )
    CallRailCompany.objects.create(company=acme, callrail_company_id="155920786")
    with run_tasks() as worker:
        status = inbox_services.replay_event(event)

    # then it is ingested like a fresh delivery
    assert status == Status.PROCESSED
    call = Call.objects.get()
    assert (call.company, call.external_id, call.stage) == (acme, made["id"], Stage.RECORDED)
    assert worker.count(TRANSCRIBE) == 1


def test_the_outsider_never_sees_the_call(
    acme_callrail, globex_callrail, sandbox, client, run_tasks
):
    make_calls(sandbox, call_id=ANSWERED_CAL, legacy_id=766970532, scenario="booked")
    with run_tasks():
        post_callrail(client, "call.completed", fixture("call.completed.answered"), ACME_KEY)

    assert not Call.objects.filter(company=globex_callrail).exists()
    assert not Contact.objects.filter(company=globex_callrail).exists()
    assert Call.objects.get().company == acme_callrail
