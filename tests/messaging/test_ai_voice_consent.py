"""The ai_voice channel: an opt-in recorded with its proof through consent/, and the gate
that lets no AI call go without it (check_call)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from messaging import gate
from messaging.models import ConsentEvent
from messaging.services import record_consent
from tests.messaging.conftest import CUSTOMER, text_in

URL = "/api/v1/consent/"
NOON_NY = datetime.datetime(2026, 3, 10, 17, 0, tzinfo=datetime.UTC)
LATE_NY = datetime.datetime(2026, 3, 11, 3, 30, tzinfo=datetime.UTC)  # 22:30 in New York
PROOF = {
    "phone": "(212) 555-0142",
    "channel": "ai_voice",
    "action": "opt_in",
    "disclosure_version": "ai-calls-2026-03",
    "evidence": "verbal, on call CA123 at 02:13",
    "obtained_at": "2026-03-09T15:00:00Z",
}


def test_a_csr_records_an_ai_voice_opt_in_with_its_proof(acme_sms, acme_csr):
    response = acme_csr.client().post(URL, PROOF, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["phone"], body["channel"], body["state"]) == (CUSTOMER, "ai_voice", "opt_in")
    [event] = body["history"]
    assert (event["disclosure_version"], event["evidence"], event["obtained_at"]) == (
        "ai-calls-2026-03",
        "verbal, on call CA123 at 02:13",
        "2026-03-09T15:00:00Z",
    )
    stored = ConsentEvent.objects.get()
    assert (stored.source, stored.actor) == ("api", acme_csr.user)


def test_when_defaults_to_the_time_it_is_recorded(acme_sms, acme_manager):
    proof = {key: value for key, value in PROOF.items() if key != "obtained_at"}

    assert acme_manager.client().post(URL, proof, format="json").status_code == 201
    event = ConsentEvent.objects.get()
    assert abs(event.obtained_at - timezone.now()) < datetime.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"disclosure_version": ""}, "disclosure_version"),
        ({"evidence": "  "}, "evidence"),
        ({"obtained_at": "2999-01-01T00:00:00Z"}, "obtained_at"),
    ],
)
def test_an_opt_in_without_its_proof_is_400_and_nothing_stored(
    acme_sms, acme_manager, change, field
):
    response = acme_manager.client().post(URL, {**PROOF, **change}, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not ConsentEvent.objects.exists()


def test_an_sms_opt_in_cannot_be_recorded_by_staff(acme_sms, acme_manager):
    text_in("STOP")

    response = acme_manager.client().post(URL, {**PROOF, "channel": "sms"}, format="json")

    assert response.status_code == 400
    assert "action" in response.json()["error"]["details"]
    assert ConsentEvent.objects.get().action == "opt_out"


def test_an_ai_voice_opt_out_through_the_api(acme_sms, acme_csr):
    client = acme_csr.client()
    client.post(URL, PROOF, format="json")

    response = client.post(
        URL, {"phone": CUSTOMER, "channel": "ai_voice", "note": "asked on the phone"}
    )

    assert response.status_code == 201 and response.json()["state"] == "opt_out"


def test_a_sales_rep_may_not_record_consent(acme_sms, acme_rep):
    assert acme_rep.client().post(URL, PROOF, format="json").status_code == 403
    assert not ConsentEvent.objects.exists()


def test_the_outsiders_opt_in_is_theirs_alone(acme_sms, globex_manager):
    assert globex_manager.client().post(URL, PROOF, format="json").status_code == 201

    assert gate.check_call(acme_sms, to=CUSTOMER, now=NOON_NY).reason == "no_ai_voice_consent"


def _opt_in(company) -> None:
    from messaging.services import opt_in_ai_voice

    # An AI call also needs the tenant's disclosure to open with (test_bland.py).
    company.ai_call_disclosure_script = "This is an automated call from Acme."
    company.save(update_fields=["ai_call_disclosure_script"])
    opt_in_ai_voice(
        company,
        phone=CUSTOMER,
        actor=None,
        disclosure_version="ai-calls-2026-03",
        evidence="web form #42",
    )


def test_no_ai_call_without_an_opt_in(acme_sms):
    decision = gate.check_call(acme_sms, to=CUSTOMER, now=NOON_NY)

    assert not decision.allowed and decision.reason == "no_ai_voice_consent"


def test_an_ai_call_goes_with_an_opt_in_inside_the_window(acme_sms):
    _opt_in(acme_sms)

    assert gate.check_call(acme_sms, to=CUSTOMER, now=NOON_NY).allowed
    late = gate.check_call(acme_sms, to=CUSTOMER, now=LATE_NY)
    assert late.deferred and late.send_at == datetime.datetime(
        2026, 3, 11, 12, 0, tzinfo=datetime.UTC
    )


def test_a_later_stop_revokes_the_ai_voice_opt_in(acme_sms):
    _opt_in(acme_sms)
    text_in("STOP")

    assert gate.check_call(acme_sms, to=CUSTOMER, now=NOON_NY).reason == "no_ai_voice_consent"

    # an SMS opt-in does not grant AI calls again; a new ai_voice opt-in does
    record_consent(acme_sms, phone=CUSTOMER, action="opt_in", source="keyword")
    assert not gate.check_call(acme_sms, to=CUSTOMER, now=NOON_NY).allowed
    _opt_in(acme_sms)
    assert gate.check_call(acme_sms, to=CUSTOMER, now=NOON_NY).allowed
