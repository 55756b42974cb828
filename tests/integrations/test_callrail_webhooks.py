"""POST /callrail/call.completed and /callrail/call.modified: the receive side of ingest.

Tenant first (CallRail company id, else tracking number), then that tenant's signature,
then the body. A matched event is stored ``received`` and its processing enqueued; what
processing does (ingest) is tested in tests/calls.
"""

from __future__ import annotations

import copy
import json

import pytest

from integrations import services
from integrations.models import WebhookEvent
from otto.crypto import Secret
from otto.models import CallRailCompany, Company, PhoneNumber
from tests.integrations.fixtures import load, post_callrail

Status = WebhookEvent.Status
ACME_KEY = "072e77e426f92738a72fe23c4d1953b4"
GLOBEX_KEY = "9a1d0c5e88b1473fb2c0e6d4a7f3b215"


@pytest.fixture
def acme(db):
    company = Company.objects.create(
        name="Acme Heating",
        slug="acme",
        clerk_org_id="org_acme",
        callrail_signing_key=Secret(ACME_KEY),
    )
    for value in ("155920786", "COM8154748ae6bd4e278a7cddd38a662f4f"):
        CallRailCompany.objects.create(company=company, callrail_company_id=value)
    return company


@pytest.fixture
def globex(db):
    company = Company.objects.create(
        name="Globex Plumbing",
        slug="globex",
        clerk_org_id="org_globex",
        callrail_signing_key=Secret(GLOBEX_KEY),
    )
    CallRailCompany.objects.create(company=company, callrail_company_id="299000111")
    PhoneNumber.objects.create(company=company, number="+14045558514", kind="tracking")
    return company


def call(fixture: str, **changes) -> dict:
    payload = copy.deepcopy(load("callrail", fixture))
    payload.update(changes)
    return payload


def post(client, payload, key, event_type="call.completed", *, capture=None):
    """Post, and check that processing was enqueued exactly when the event was stored
    ``received`` (a refused, duplicate, unmatched or failed delivery enqueues nothing)."""
    with capture() as callbacks:
        response = post_callrail(client, event_type, payload, key)
    received = response.status_code == 200 and response.json()["status"] == Status.RECEIVED
    assert [c.args[1] for c in callbacks] == (
        ["integrations.tasks.process_webhook_event"] if received else []
    )
    return response


@pytest.fixture
def send(client, django_capture_on_commit_callbacks):
    def send(payload, key, event_type="call.completed"):
        return post(client, payload, key, event_type, capture=django_capture_on_commit_callbacks)

    return send


def stored(response) -> WebhookEvent:
    assert response.status_code == 200, response.content
    return WebhookEvent.objects.get(pk=response.json()["id"])


def stored_unverified(response) -> WebhookEvent:
    """An unknown tenant's delivery: answered like a bad signature, kept for ops."""
    assert response.status_code == 401, response.content
    return WebhookEvent.objects.latest("pk")


def test_matched_by_numeric_company_id_is_stored_for_ingest(acme, send):
    payload = call("call.completed.answered")

    event = stored(send(payload, ACME_KEY))

    assert event.company == acme
    assert event.status == Status.RECEIVED  # its processing (ingest) is enqueued
    assert event.dedupe_key == "766970532:call.completed"
    assert event.headers["signature"]  # kept, so a replay can verify it again
    assert json.loads(event.body) == payload


def test_matched_by_company_resource_id_with_cal_ids(acme, send):
    event = stored(send(call("call.completed.voicemail_resource_ids"), ACME_KEY))

    assert event.company == acme
    assert event.dedupe_key == "CAL8154748ae6bd4e278a7cddd38a662f4f:call.completed"


def test_matched_by_tracking_number_in_national_format(globex, send):
    event = stored(send(call("call.completed.outbound_no_company_id"), GLOBEX_KEY))

    assert event.company == globex
    assert event.status == Status.RECEIVED


def test_numeric_company_ids_stored_as_numbers_match_too(globex, send):
    payload = call("call.completed.answered", company_id=299000111)
    payload["tracking_phone_number"] = payload["trackingnum"] = "+18005550100"

    assert stored(send(payload, GLOBEX_KEY)).company == globex


def test_a_bad_signature_is_refused_and_nothing_is_stored(acme, send):
    response = send(call("call.completed.answered"), "not-the-key")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()


def test_a_missing_signature_is_refused(acme, send):
    assert send(call("call.completed.answered"), None).status_code == 401
    assert not WebhookEvent.objects.exists()


def test_another_tenants_key_is_refused(acme, globex, send):
    # Acme's company id in the body, signed with Globex's key.
    response = send(call("call.completed.answered"), GLOBEX_KEY)

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_a_new_signing_key_works_at_once_and_the_old_one_stops(acme, send):
    first = call("call.completed.answered", id=1, resource_id="CAL1")
    assert send(first, ACME_KEY).status_code == 200  # the tenant and key are now remembered

    acme.callrail_signing_key = Secret(GLOBEX_KEY)
    acme.save()

    assert send(call("call.completed.answered", id=2), ACME_KEY).status_code == 401
    assert stored(send(call("call.completed.answered", id=3), GLOBEX_KEY)).company == acme


def test_a_key_changed_by_another_process_verifies_against_the_database(acme, send):
    assert send(call("call.completed.answered", id=1), ACME_KEY).status_code == 200
    # no signal reaches this process: the remembered key is stale
    Company.objects.filter(pk=acme.pk).update(callrail_signing_key=Secret(GLOBEX_KEY))

    assert stored(send(call("call.completed.answered", id=2), GLOBEX_KEY)).company == acme


def test_an_unknown_tenant_is_answered_401_and_stored_unmatched(db, send):
    response = send(call("call.completed.answered"), ACME_KEY)

    event = stored_unverified(response)
    assert event.status == Status.UNMATCHED
    assert event.company is None
    assert "155920786" in event.last_error and "+14045558514" in event.last_error
    assert not Company.objects.exists()  # a webhook never creates a tenant


def test_an_unmatched_delivery_cannot_take_the_key_of_the_real_one(db, send):
    # An unsigned delivery for an unknown tenant cannot make the real call a "duplicate".
    unsigned = stored_unverified(send(call("call.completed.answered"), None))
    company = Company.objects.create(
        name="Acme",
        slug="acme",
        callrail_signing_key=Secret(ACME_KEY),
    )
    CallRailCompany.objects.create(company=company, callrail_company_id="155920786")

    real = stored(send(call("call.completed.answered"), ACME_KEY))

    assert real.pk != unsigned.pk and real.status == Status.RECEIVED


def test_replay_after_the_tenant_is_configured_verifies_and_matches(db, send):
    event = stored_unverified(send(call("call.completed.answered"), ACME_KEY))
    acme = Company.objects.create(
        name="Acme",
        slug="acme",
        callrail_signing_key=Secret(ACME_KEY),
    )
    CallRailCompany.objects.create(company=acme, callrail_company_id="155920786")

    status = services.replay_event(event)

    event.refresh_from_db()
    assert status == Status.PROCESSED  # the call is upserted; tests/calls follows its ingest
    assert (event.status, event.company, event.last_error) == (Status.PROCESSED, acme, "")
    assert event.dedupe_key == "766970532:call.completed"


def test_replay_with_a_key_that_does_not_match_is_refused(db, send):
    event = stored_unverified(send(call("call.completed.answered"), "what-callrail-really-used"))
    company = Company.objects.create(
        name="Acme",
        slug="acme",
        callrail_signing_key=Secret(ACME_KEY),
    )
    CallRailCompany.objects.create(company=company, callrail_company_id="155920786")

    with pytest.raises(services.ReplayRefused):
        services.replay_event(event)

    event.refresh_from_db()
    assert (event.status, event.company) == (Status.UNMATCHED, None)
    assert "Signature" in event.last_error


def test_a_tenant_without_a_signing_key_is_unmatched_until_it_has_one(db, send):
    company = Company.objects.create(name="Acme", slug="acme")
    CallRailCompany.objects.create(company=company, callrail_company_id="155920786")

    event = stored_unverified(send(call("call.completed.answered"), ACME_KEY))

    assert (event.status, event.company) == (Status.UNMATCHED, None)
    assert "no CallRail signing key" in event.last_error


def test_a_duplicate_is_acknowledged_and_stored_once(acme, send):
    first = stored(send(call("call.completed.answered"), ACME_KEY))

    again = send(call("call.completed.answered"), ACME_KEY)

    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "id": first.pk}
    assert WebhookEvent.objects.count() == 1


def test_the_same_call_by_numeric_id_and_cal_id_are_distinct_keys(acme, send):
    numeric = stored(send(call("call.completed.answered"), ACME_KEY))
    by_resource = stored(
        send(
            call("call.completed.answered", resource_id="CAL0000000000000000000000000000001"),
            ACME_KEY,
        )
    )

    assert numeric.dedupe_key == "766970532:call.completed"
    assert by_resource.dedupe_key == "CAL0000000000000000000000000000001:call.completed"


def test_call_modified_is_keyed_by_its_sorted_changes(acme, send):
    tags_and_note = stored(send(call("call.modified"), ACME_KEY, "call.modified"))
    same_reordered = send(
        call("call.modified", changes=["note", "tags"]), ACME_KEY, "call.modified"
    )
    only_note = stored(send(call("call.modified", changes=["note"]), ACME_KEY, "call.modified"))

    assert tags_and_note.dedupe_key == "766970532:call.modified:note,tags"
    assert tags_and_note.event_type == "call.modified"
    assert same_reordered.json()["status"] == "duplicate"
    assert only_note.dedupe_key == "766970532:call.modified:note"


def test_a_body_without_a_call_id_is_stored_failed_with_the_reason(acme, send):
    event = stored(send(call("call.completed.no_call_id"), ACME_KEY))

    assert (event.status, event.company) == (Status.FAILED, acme)
    assert "no call id" in event.last_error
    assert event.dedupe_key.startswith("sha256:")


def test_a_body_that_is_not_json_is_kept_as_failed(acme, client):
    response = client.post(
        "/callrail/call.completed", data=b"callernum=%2B12148654559", content_type="text/plain"
    )

    event = stored_unverified(response)
    assert event.status == Status.FAILED and "not a JSON object" in event.last_error
    assert event.body == "callernum=%2B12148654559"


@pytest.mark.parametrize(
    ("duration", "seconds"), [("13", 13), (13, 13), ("", None), ("n/a", None), (12.7, 12)]
)
def test_duration_is_read_leniently(duration, seconds):
    from integrations.callrail.webhook_schemas import CallWebhook

    parsed = CallWebhook.model_validate(call("call.completed.answered", duration=duration))

    assert parsed.duration == seconds
    assert parsed.call_id == "766970532"
    assert parsed.start_time is not None and parsed.start_time.utcoffset() is not None


@pytest.mark.parametrize("url", ["/callrail/call.completed", "/webhooks/clerk"])
def test_only_post_is_accepted(db, client, url):
    response = client.get(url)

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response["Allow"] == "POST"
