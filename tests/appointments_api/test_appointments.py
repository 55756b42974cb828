"""appointments/, appointments/{id}/ (GET, PATCH): the schedule, rescheduling, cancelling,
outcomes and what they do to the lead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from appointments.models import Appointment, Lead, LeadStatusChange
from tests.api.factories import AppointmentFactory, LeadFactory
from tests.appointments_api.conftest import error, ids

URL = "/api/v1/appointments/"
T0 = datetime(2026, 3, 10, 14, tzinfo=UTC)  # 10:00 in New York


def detail(appointment: Appointment, suffix: str = "") -> str:
    return f"{URL}{appointment.pk}/{suffix}"


def at(start: datetime, hours: float = 2, **fields) -> dict:
    return {"scheduled_start": start, "scheduled_end": start + timedelta(hours=hours), **fields}


def test_the_schedule_soonest_first_with_the_minimum_fields(acme_csr, acme_rep):
    company = acme_csr.company
    later = AppointmentFactory(company=company, **at(T0 + timedelta(days=1)))
    sooner = AppointmentFactory(company=company, assigned_rep=acme_rep.user, **at(T0))

    response = acme_csr.client().get(URL)

    assert ids(response) == [sooner.pk, later.pk]
    row = response.json()["results"][0]
    assert set(row) >= {
        "id",
        "lead",
        "contact",
        "call",
        "scheduled_start",
        "scheduled_end",
        "address",
        "latitude",
        "longitude",
        "service_type",
        "status",
        "outcome",
        "deal_size",
        "assigned_rep",
    }
    assert row["scheduled_start"] == "2026-03-10T14:00:00Z"
    assert row["assigned_rep"]["id"] == acme_rep.user.pk
    assert (row["status"], row["outcome"], row["lead"]) == ("scheduled", "pending", sooner.lead_id)


def test_filters_the_tenants_days_rep_status_and_outcome(acme_manager, acme_rep):
    company = acme_manager.company
    company.timezone = "America/Denver"
    company.save()
    # 10 March in Denver (MDT, UTC-6) runs from 06:00 UTC to 06:00 UTC on the 11th.
    evening_10th = AppointmentFactory(
        company=company, assigned_rep=acme_rep.user, **at(datetime(2026, 3, 11, 2, tzinfo=UTC))
    )
    morning_11th = AppointmentFactory(
        company=company, outcome="won", **at(datetime(2026, 3, 11, 15, tzinfo=UTC))
    )
    late_9th = AppointmentFactory(
        company=company, status="cancelled", **at(datetime(2026, 3, 10, 5, tzinfo=UTC))
    )
    client = acme_manager.client()

    day = client.get(URL, {"date_from": "2026-03-10", "date_to": "2026-03-10"})
    rep = client.get(URL, {"assigned_rep": acme_rep.user.pk})
    cancelled = client.get(URL, {"status": "cancelled"})
    won = client.get(URL, {"outcome": "won"})
    newest_first = client.get(URL, {"ordering": "-scheduled_start"})

    assert ids(day) == [evening_10th.pk]
    assert ids(rep) == [evening_10th.pk]
    assert ids(cancelled) == [late_9th.pk]
    assert ids(won) == [morning_11th.pk]
    assert ids(newest_first) == [morning_11th.pk, evening_10th.pk, late_9th.pk]


def test_a_rep_sees_and_updates_only_their_appointments(acme_rep, acme_rep2):
    company = acme_rep.company
    mine = AppointmentFactory(company=company, assigned_rep=acme_rep.user)
    theirs = AppointmentFactory(company=company, assigned_rep=acme_rep2.user)
    AppointmentFactory(company=company)
    client = acme_rep.client()

    assert ids(client.get(URL)) == [mine.pk]
    assert client.patch(detail(mine), {"notes": "Gate code 4411"}).status_code == 200
    assert error(client.patch(detail(theirs), {"notes": "mine now"}), 404)["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.notes == ""


def test_reschedule_and_cancel(acme_csr):
    appointment = AppointmentFactory(company=acme_csr.company, **at(T0))
    client = acme_csr.client()

    moved = client.patch(
        detail(appointment),
        {
            "scheduled_start": "2026-03-12T09:00:00-04:00",
            "scheduled_end": "2026-03-12T11:00:00-04:00",
        },
    )
    cancelled = client.patch(detail(appointment), {"status": "cancelled"})

    assert moved.status_code == 200
    assert moved.json()["scheduled_start"] == "2026-03-12T13:00:00Z"
    assert cancelled.json()["status"] == "cancelled"
    appointment.refresh_from_db()
    assert appointment.scheduled_end == datetime(2026, 3, 12, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scheduled_end": "2026-03-10T13:00:00Z"}, "scheduled_end"),  # before the start
        ({"scheduled_start": "2026-03-10T16:00:00Z"}, "scheduled_end"),  # at the end
        ({"deal_size": "-5"}, "deal_size"),
        ({"status": "postponed"}, "status"),
        ({"outcome": "maybe", "notes": "x"}, "outcome"),
    ],
)
def test_bad_input_is_400_and_writes_nothing(acme_manager, body, field):
    appointment = AppointmentFactory(company=acme_manager.company, **at(T0))
    before = Appointment.objects.filter(pk=appointment.pk).values().get()

    response = acme_manager.client().patch(detail(appointment), body)

    assert field in error(response, 400)["details"]
    assert Appointment.objects.filter(pk=appointment.pk).values().get() == before


def test_won_closes_the_lead_won_and_copies_the_deal_size(acme_rep):
    lead = LeadFactory(
        company=acme_rep.company, status=Lead.Status.QUALIFIED_BOOKED, assigned_rep=acme_rep.user
    )
    appointment = AppointmentFactory(
        company=acme_rep.company, lead=lead, assigned_rep=acme_rep.user
    )
    client = acme_rep.client()

    response = client.patch(
        detail(appointment), {"outcome": "won", "deal_size": "8900.00", "status": "completed"}
    )
    client.patch(detail(appointment), {"deal_size": "9100.00"})  # the invoice came in higher

    assert response.status_code == 200
    assert response.json()["outcome"] == "won"
    lead.refresh_from_db()
    assert lead.status == Lead.Status.CLOSED_WON and not lead.is_active
    assert lead.deal_size == Decimal("9100.00")
    change = LeadStatusChange.objects.get(lead=lead)
    assert (change.from_status, change.to_status, change.actor) == (
        "qualified_booked",
        "closed_won",
        acme_rep.user,
    )
    assert change.reason == f"appointment {appointment.pk} won"


def test_lost_closes_an_active_lead_lost_but_never_undoes_a_win(acme_manager):
    company = acme_manager.company
    lead = LeadFactory(company=company, status=Lead.Status.QUALIFIED_BOOKED)
    first = AppointmentFactory(company=company, lead=lead)
    second = AppointmentFactory(company=company, lead=lead)
    client = acme_manager.client()

    client.patch(detail(first), {"outcome": "lost"})
    lead.refresh_from_db()
    assert lead.status == Lead.Status.CLOSED_LOST

    client.patch(detail(second), {"outcome": "won"})  # the customer came back
    client.patch(detail(first), {"outcome": "lost", "notes": "still lost"})

    lead.refresh_from_db()
    assert lead.status == Lead.Status.CLOSED_WON
    assert list(
        LeadStatusChange.objects.filter(lead=lead)
        .order_by("pk")
        .values_list("to_status", flat=True)
    ) == ["closed_lost", "closed_won"]


def test_rescheduling_onto_the_reps_other_appointment_is_409_unless_allowed(acme_csr, acme_rep):
    company = acme_csr.company
    busy = AppointmentFactory(company=company, assigned_rep=acme_rep.user, **at(T0))
    moving = AppointmentFactory(
        company=company, assigned_rep=acme_rep.user, **at(T0 + timedelta(days=1))
    )
    client = acme_csr.client()
    onto_busy = {"scheduled_start": "2026-03-10T15:00:00Z", "scheduled_end": "2026-03-10T17:00:00Z"}

    refused = client.patch(detail(moving), onto_busy)
    allowed = client.patch(detail(moving), {**onto_busy, "allow_double_booking": True})

    body = error(refused, 409)
    assert body["code"] == "double_booking" and body["details"] == {"conflicts": [busy.pk]}
    assert allowed.status_code == 200
    assert allowed.json()["scheduled_start"] == "2026-03-10T15:00:00Z"


def test_reinstating_a_cancelled_appointment_checks_the_schedule(acme_csr, acme_rep):
    company = acme_csr.company
    cancelled = AppointmentFactory(
        company=company, assigned_rep=acme_rep.user, status="cancelled", **at(T0)
    )
    AppointmentFactory(company=company, assigned_rep=acme_rep.user, **at(T0 + timedelta(hours=1)))

    response = acme_csr.client().patch(detail(cancelled), {"status": "scheduled"})

    assert error(response, 409)["code"] == "double_booking"
    cancelled.refresh_from_db()
    assert cancelled.status == "cancelled"


def test_the_list_query_count_does_not_grow_with_the_page(acme_manager, acme_rep):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(12):
        AppointmentFactory(company=acme_manager.company, assigned_rep=acme_rep.user)
    client = acme_manager.client()
    client.get(URL)

    counts = []
    for size in (2, 12):
        with CaptureQueriesContext(connection) as queries:
            assert len(ids(client.get(URL, {"page_size": size}))) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]
