"""The calls a sales rep sees (through their leads and appointments), and PATCH calls/{id}/
handled_by, the manager's correction of who answered."""

from __future__ import annotations

from appointments.models import Lead
from appointments.services import change_lead_status
from tests.api.factories import AppointmentFactory, CallFactory, ContactFactory, LeadFactory
from tests.appointments_api.conftest import error, ids

URL = "/api/v1/calls/"


def test_a_rep_sees_the_calls_of_their_active_leads_and_appointments(acme_rep, acme_rep2):
    company = acme_rep.company
    dana = ContactFactory(company=company)
    LeadFactory(company=company, contact=dana, assigned_rep=acme_rep.user)
    danas_calls = [CallFactory(company=company, contact=dana) for _ in range(2)]
    # An appointment of theirs booked on a call whose contact's lead is someone else's.
    sam = ContactFactory(company=company)
    sams_lead = LeadFactory(company=company, contact=sam, assigned_rep=acme_rep2.user)
    booking = CallFactory(company=company, contact=sam)
    other_sam_call = CallFactory(company=company, contact=sam)
    AppointmentFactory(company=company, lead=sams_lead, call=booking, assigned_rep=acme_rep.user)
    stranger = CallFactory(company=company, contact=ContactFactory(company=company))
    client = acme_rep.client()

    seen = ids(client.get(URL))

    assert sorted(seen) == sorted([*(c.pk for c in danas_calls), booking.pk])
    assert client.get(f"{URL}{booking.pk}/").status_code == 200
    assert client.get(f"{URL}{stranger.pk}/").status_code == 404
    assert client.get(f"{URL}{other_sam_call.pk}/").status_code == 404
    # Each call appears once, however many rules grant it.
    assert len(seen) == len(set(seen))


def test_a_closed_lead_no_longer_shows_its_calls(acme_rep):
    company = acme_rep.company
    dana = ContactFactory(company=company)
    lead = LeadFactory(company=company, contact=dana, assigned_rep=acme_rep.user)
    CallFactory(company=company, contact=dana)

    change_lead_status(lead, Lead.Status.CLOSED_LOST, actor=None)

    assert ids(acme_rep.client().get(URL)) == []


def test_another_tenants_rep_lead_grants_nothing(acme_rep, globex):
    CallFactory(company=globex, contact=ContactFactory(company=globex))
    LeadFactory(company=globex, assigned_rep=acme_rep.user)  # a stray row, wrong tenant

    assert ids(acme_rep.client().get(URL)) == []


def test_a_manager_corrects_who_handled_the_call(acme_manager, acme_csr):
    call = CallFactory(company=acme_manager.company, handled_by=None)
    client = acme_manager.client()

    response = client.patch(f"{URL}{call.pk}/", {"handled_by": acme_csr.user.pk})
    filtered = client.get(URL, {"handled_by": acme_csr.user.pk})

    assert response.status_code == 200, response.content
    assert response.json()["handled_by"]["id"] == acme_csr.user.pk
    assert ids(filtered) == [call.pk]
    cleared = client.patch(f"{URL}{call.pk}/", {"handled_by": None})
    assert cleared.json()["handled_by"] is None


def test_handled_by_must_be_a_member_and_only_managers_correct_it(
    acme_manager, acme_csr, globex_manager
):
    call = CallFactory(company=acme_manager.company, handled_by=None)

    outsider = acme_manager.client().patch(
        f"{URL}{call.pk}/", {"handled_by": globex_manager.user.pk}
    )
    by_csr = acme_csr.client().patch(f"{URL}{call.pk}/", {"handled_by": acme_csr.user.pk})

    assert "handled_by" in error(outsider, 400)["details"]
    assert error(by_csr, 403)["code"] == "permission_denied"
    call.refresh_from_db()
    assert call.handled_by is None
