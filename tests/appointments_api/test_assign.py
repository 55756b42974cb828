"""POST appointments/{id}/assign/: only to an active sales rep of the tenant, never
double-booked unless asked, and safe when two dispatchers assign at the same moment."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests

from appointments.models import Appointment
from otto.models import Membership
from tests.api.factories import AppointmentFactory, LeadFactory
from tests.appointments_api.conftest import error

T0 = datetime(2026, 3, 10, 14, tzinfo=UTC)


def assign_url(appointment: Appointment) -> str:
    return f"/api/v1/appointments/{appointment.pk}/assign/"


def at(start: datetime, hours: float = 2, **fields) -> dict:
    return {"scheduled_start": start, "scheduled_end": start + timedelta(hours=hours), **fields}


def test_assign_puts_it_on_the_reps_schedule_and_gives_the_lead_the_rep(acme_csr, acme_rep):
    appointment = AppointmentFactory(company=acme_csr.company)

    response = acme_csr.client().post(assign_url(appointment), {"rep": acme_rep.user.pk})

    assert response.status_code == 200, response.content
    assert response.json()["assigned_rep"]["id"] == acme_rep.user.pk
    appointment.refresh_from_db()
    appointment.lead.refresh_from_db()
    assert appointment.assigned_rep == acme_rep.user
    assert appointment.lead.assigned_rep == acme_rep.user
    # The rep now sees it.
    assert acme_rep.client().get(f"/api/v1/appointments/{appointment.pk}/").status_code == 200


def test_a_lead_that_has_a_rep_keeps_them(acme_manager, acme_rep, acme_rep2):
    lead = LeadFactory(company=acme_manager.company, assigned_rep=acme_rep2.user)
    appointment = AppointmentFactory(company=acme_manager.company, lead=lead)

    acme_manager.client().post(assign_url(appointment), {"rep": acme_rep.user.pk})

    lead.refresh_from_db()
    assert lead.assigned_rep == acme_rep2.user


@pytest.mark.parametrize("who", ["csr", "manager", "outsider", "revoked_rep", "nobody"])
def test_only_an_active_sales_rep_of_the_tenant(
    acme_manager, acme_csr, acme_rep, globex_manager, who
):
    if who == "revoked_rep":
        Membership.objects.filter(pk=acme_rep.membership.pk).update(revoked_at=T0)
    rep = {
        "csr": acme_csr.user.pk,
        "manager": acme_manager.user.pk,
        "outsider": globex_manager.user.pk,
        "revoked_rep": acme_rep.user.pk,
        "nobody": 987654321,
    }[who]
    appointment = AppointmentFactory(company=acme_manager.company)

    response = acme_manager.client().post(assign_url(appointment), {"rep": rep})

    body = error(response, 400)
    assert body["code"] == "validation_error" and "rep" in body["details"]
    appointment.refresh_from_db()
    appointment.lead.refresh_from_db()
    assert appointment.assigned_rep is None and appointment.lead.assigned_rep is None


def test_an_overlap_is_409_with_the_conflicting_ids_unless_allowed(acme_csr, acme_rep):
    company = acme_csr.company
    morning = AppointmentFactory(company=company, assigned_rep=acme_rep.user, **at(T0))
    noon = AppointmentFactory(
        company=company, assigned_rep=acme_rep.user, **at(T0 + timedelta(hours=2))
    )
    AppointmentFactory(  # cancelled: the slot is free
        company=company, assigned_rep=acme_rep.user, status="cancelled", **at(T0)
    )
    overlapping = AppointmentFactory(company=company, **at(T0 + timedelta(hours=1)))
    client = acme_csr.client()

    refused = client.post(assign_url(overlapping), {"rep": acme_rep.user.pk})

    body = error(refused, 409)
    assert body["code"] == "double_booking"
    assert body["details"] == {"conflicts": [morning.pk, noon.pk]}
    overlapping.refresh_from_db()
    assert overlapping.assigned_rep is None

    allowed = client.post(
        assign_url(overlapping), {"rep": acme_rep.user.pk, "allow_double_booking": True}
    )
    assert allowed.status_code == 200


def test_back_to_back_is_not_an_overlap(acme_csr, acme_rep):
    company = acme_csr.company
    AppointmentFactory(company=company, assigned_rep=acme_rep.user, **at(T0))
    next_slot = AppointmentFactory(company=company, **at(T0 + timedelta(hours=2)))

    response = acme_csr.client().post(assign_url(next_slot), {"rep": acme_rep.user.pk})

    assert response.status_code == 200


def test_reps_do_not_dispatch(acme_rep):
    appointment = AppointmentFactory(company=acme_rep.company)

    response = acme_rep.client().post(assign_url(appointment), {"rep": acme_rep.user.pk})

    assert error(response, 403)["code"] == "permission_denied"


def test_two_concurrent_assigns_of_overlapping_appointments_book_the_rep_once(
    live_server, acme_manager, acme_csr, acme_rep, settings
):
    # Two dispatchers, two overlapping jobs, one rep, the same instant, against a real
    # multi-threaded server: exactly one wins, the other is told about the overlap.
    settings.ENABLE_RATE_LIMITING = False
    company = acme_manager.company
    rounds = 4
    pairs = [
        (
            AppointmentFactory(company=company, **at(T0 + timedelta(days=n))),
            AppointmentFactory(company=company, **at(T0 + timedelta(days=n, hours=1))),
        )
        for n in range(rounds)
    ]
    tokens = [acme_manager.token(lifetime=600), acme_csr.token(lifetime=600)]

    def post(appointment: Appointment, token: str, barrier, statuses: list[int]) -> None:
        barrier.wait()
        response = requests.post(
            f"{live_server.url}{assign_url(appointment)}",
            json={"rep": acme_rep.user.pk},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        statuses.append(response.status_code)

    for pair in pairs:
        barrier = threading.Barrier(2)
        statuses: list[int] = []
        threads = [
            threading.Thread(target=post, args=(appointment, token, barrier, statuses))
            for appointment, token in zip(pair, tokens, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(statuses) == [200, 409]
        booked = Appointment.objects.filter(pk__in=[a.pk for a in pair], assigned_rep=acme_rep.user)
        assert booked.count() == 1
