"""signals/, signals/{id}/, signals/{id}/acknowledge/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from appointments.models import KeySignal
from tests.api.factories import KeySignalFactory
from tests.appointments_api.conftest import error, ids

URL = "/api/v1/signals/"
NOW = datetime(2026, 3, 10, 17, tzinfo=UTC)


def test_the_office_lists_and_filters_signals(acme_csr):
    company = acme_csr.company
    urgent = KeySignalFactory(company=company)
    rival = KeySignalFactory(
        company=company,
        type=KeySignal.Type.COMPETITOR_MENTIONED,
        severity=KeySignal.Severity.LOW,
        detail="Mentioned CoolAir's quote",
        acknowledged_at=NOW,
        acknowledged_by=acme_csr.user,
    )
    client = acme_csr.client()

    response = client.get(URL)

    assert ids(response) == [rival.pk, urgent.pk]
    row = response.json()["results"][1]
    assert set(row) >= {
        "id",
        "type",
        "severity",
        "call",
        "contact",
        "detail",
        "acknowledged_at",
        "acknowledged_by",
    }
    assert (row["type"], row["call"], row["acknowledged_at"]) == ("urgent", urgent.call_id, None)
    assert ids(client.get(URL, {"type": "competitor_mentioned"})) == [rival.pk]
    assert ids(client.get(URL, {"acknowledged": "false"})) == [urgent.pk]
    assert ids(client.get(URL, {"acknowledged": "true"})) == [rival.pk]
    assert ids(client.get(URL, {"call": urgent.call_id})) == [urgent.pk]
    assert ids(client.get(URL, {"search": "coolair"})) == [rival.pk]
    assert error(client.get(URL, {"type": "gossip"}), 400)["code"] == "validation_error"


def test_acknowledge_records_who_and_keeps_the_first(acme_manager, acme_csr):
    signal = KeySignalFactory(company=acme_csr.company)

    with time_machine.travel(NOW, tick=False):
        first = acme_csr.client().post(f"{URL}{signal.pk}/acknowledge/")
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        again = acme_manager.client().post(f"{URL}{signal.pk}/acknowledge/")

    assert first.status_code == again.status_code == 200
    assert again.json()["acknowledged_at"] == "2026-03-10T17:00:00Z"
    assert again.json()["acknowledged_by"]["id"] == acme_csr.user.pk


def test_signals_are_not_for_reps(acme_rep):
    signal = KeySignalFactory(company=acme_rep.company)
    client = acme_rep.client()

    assert error(client.get(URL), 403)["code"] == "permission_denied"
    assert client.post(f"{URL}{signal.pk}/acknowledge/").status_code == 403
    signal.refresh_from_db()
    assert signal.acknowledged_at is None
