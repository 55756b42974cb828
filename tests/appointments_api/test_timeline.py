"""contacts/{id}/timeline/: lead status changes, appointments and tasks join the calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from appointments.models import Lead, LeadStatusChange, Task
from appointments.services import change_lead_status, open_lead
from tests.api.factories import AppointmentFactory, CallFactory, ContactFactory, TaskFactory

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def timeline(member, contact, **params) -> list[tuple[str, int]]:
    response = member.client().get(f"/api/v1/contacts/{contact.pk}/timeline/", params)
    assert response.status_code == 200, response.content
    return [(item["type"], item["data"]["id"]) for item in response.json()["results"]]


def _at(model, row, when: datetime) -> None:
    model.objects.filter(pk=row.pk).update(created_at=when)


def test_every_kind_of_item_newest_first(acme_manager, acme_rep):
    company = acme_manager.company
    dana = ContactFactory(company=company)
    call = CallFactory(company=company, contact=dana, started_at=T0)
    lead = open_lead(company.pk, dana.pk, call=call)
    opened = LeadStatusChange.objects.get(lead=lead)
    _at(LeadStatusChange, opened, T0 + timedelta(minutes=5))
    change_lead_status(lead, Lead.Status.QUALIFIED_BOOKED, actor=None, call=call)
    booked = LeadStatusChange.objects.get(lead=lead, to_status="qualified_booked")
    _at(LeadStatusChange, booked, T0 + timedelta(minutes=6))
    task = TaskFactory(company=company, contact=dana, lead=lead, call=call)
    _at(Task, task, T0 + timedelta(minutes=7))
    visit = AppointmentFactory(
        company=company,
        lead=lead,
        call=call,
        assigned_rep=acme_rep.user,
        scheduled_start=T0 + timedelta(days=2),
        scheduled_end=T0 + timedelta(days=2, hours=2),
    )
    TaskFactory(company=company, contact=ContactFactory(company=company))  # someone else

    items = timeline(acme_manager, dana)

    assert items == [
        ("appointment", visit.pk),  # placed at its scheduled start
        ("task", task.pk),
        ("lead_status", booked.pk),
        ("lead_status", opened.pk),
        ("call", call.pk),
    ]
    response = acme_manager.client().get(f"/api/v1/contacts/{dana.pk}/timeline/").json()
    appointment, _, change, *_ = response["results"]
    assert appointment["at"] == "2026-03-03T12:00:00Z"
    assert appointment["data"]["assigned_rep"]["id"] == acme_rep.user.pk
    assert change["data"]["to_status"] == "qualified_booked" and change["data"]["call"] == call.pk


def test_a_csr_sees_only_their_own_tasks_on_the_timeline(acme_csr, acme_manager):
    company = acme_csr.company
    dana = ContactFactory(company=company)
    mine = TaskFactory(company=company, contact=dana, assignee=acme_csr.user)
    TaskFactory(company=company, contact=dana, assignee=acme_manager.user)

    assert timeline(acme_csr, dana) == [("task", mine.pk)]
    assert len(timeline(acme_manager, dana)) == 2


def test_the_query_count_does_not_grow_with_the_timelines_length(acme_manager, acme_rep):
    company = acme_manager.company

    def contact_with(n: int):
        contact = ContactFactory(company=company)
        lead = open_lead(company.pk, contact.pk)
        for i in range(n):
            call = CallFactory(company=company, contact=contact, handled_by=acme_manager.user)
            change_lead_status(
                lead, Lead.Status.HOT if i % 2 else Lead.Status.WARM, actor=acme_manager.user
            )
            TaskFactory(
                company=company,
                contact=contact,
                lead=lead,
                call=call,
                assignee=acme_rep.user,
                created_by=acme_manager.user,
            )
            AppointmentFactory(company=company, lead=lead, call=call, assigned_rep=acme_rep.user)
        return contact

    short, long = contact_with(1), contact_with(10)
    client = acme_manager.client()
    client.get(f"/api/v1/contacts/{short.pk}/timeline/")  # warm the per-process caches

    counts = []
    for contact, expected in ((short, 5), (long, 41)):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/api/v1/contacts/{contact.pk}/timeline/")
        assert len(response.json()["results"]) == expected
        counts.append(len(queries))

    assert counts[0] == counts[1]
