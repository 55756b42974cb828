"""tasks/ (list, create), tasks/{id}/ (GET, PATCH), tasks/{id}/complete/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from appointments.models import Task
from tests.api.factories import CallFactory, ContactFactory, LeadFactory, TaskFactory
from tests.appointments_api.conftest import error, ids

URL = "/api/v1/tasks/"
NOW = datetime(2026, 3, 10, 17, tzinfo=UTC)


def detail(task: Task, suffix: str = "") -> str:
    return f"{URL}{task.pk}/{suffix}"


def test_a_manual_task_is_the_creators_unless_it_names_someone(acme_csr, acme_rep):
    lead = LeadFactory(company=acme_csr.company)
    client = acme_csr.client()

    mine = client.post(URL, {"type": "send_quote", "lead": lead.pk, "due_at": "2026-03-11T17:00Z"})
    theirs = client.post(URL, {"type": "site_visit", "assignee": acme_rep.user.pk})

    assert mine.status_code == 201, mine.content
    body = mine.json()
    assert (body["type"], body["source"], body["status"]) == ("send_quote", "manual", "open")
    assert body["assignee"]["id"] == acme_csr.user.pk
    assert body["created_by"]["id"] == acme_csr.user.pk
    assert body["lead"] == lead.pk and body["contact"]["id"] == lead.contact_id  # from the lead
    assert theirs.json()["assignee"]["id"] == acme_rep.user.pk
    # The CSR sees their own task, not the one they gave the rep.
    assert ids(client.get(URL)) == [body["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "walk_the_dog"}, "type"),
        ({"type": "call_back", "assignee": "outsider"}, "assignee"),
        ({"type": "call_back", "contact": "globex_contact"}, "contact"),
        ({"type": "call_back", "lead": "globex_lead"}, "lead"),
        ({"type": "call_back", "call": "globex_call"}, "call"),
        ({"type": "call_back", "contact": "acme_contact", "lead": "acme_lead"}, "lead"),
        ({"type": "call_back", "due_at": "tomorrow"}, "due_at"),
    ],
)
def test_bad_input_is_400_and_creates_nothing(acme_manager, globex_manager, body, field):
    acme, globex = acme_manager.company, globex_manager.company
    refs = {
        "outsider": globex_manager.user.pk,
        "globex_contact": ContactFactory(company=globex).pk,
        "globex_lead": LeadFactory(company=globex).pk,
        "globex_call": CallFactory(company=globex).pk,
        "acme_contact": ContactFactory(company=acme).pk,
        "acme_lead": LeadFactory(company=acme).pk,  # another contact's lead
    }
    body = {key: refs.get(value, value) for key, value in body.items()}

    response = acme_manager.client().post(URL, body)

    assert field in error(response, 400)["details"]
    assert not Task.objects.exists()


def test_a_rep_may_only_link_their_own_leads(acme_rep):
    other = LeadFactory(company=acme_rep.company)
    own = LeadFactory(company=acme_rep.company, assigned_rep=acme_rep.user)
    client = acme_rep.client()

    refused = client.post(URL, {"type": "check_in", "lead": other.pk})
    accepted = client.post(URL, {"type": "check_in", "lead": own.pk, "contact": own.contact_id})

    assert "lead" in error(refused, 400)["details"]
    assert accepted.status_code == 201


@time_machine.travel(NOW, tick=False)
def test_filters_overdue_status_assignee_due_range_contact_and_lead(acme_manager, acme_csr):
    company = acme_manager.company  # New York
    lead = LeadFactory(company=company)
    late = TaskFactory(company=company, due_at=NOW - timedelta(hours=1), assignee=acme_csr.user)
    today = TaskFactory(
        company=company, due_at=NOW + timedelta(hours=2), lead=lead, contact=lead.contact
    )
    done_late = TaskFactory(company=company, due_at=NOW - timedelta(days=2), status="done")
    no_due = TaskFactory(company=company)
    client = acme_manager.client()

    overdue = client.get(URL, {"overdue": "true"})
    not_overdue = client.get(URL, {"overdue": "false"})
    open_ = client.get(URL, {"status": "open"})
    by_assignee = client.get(URL, {"assignee": acme_csr.user.pk})
    due_today = client.get(URL, {"due_from": "2026-03-10", "due_to": "2026-03-10"})
    by_lead = client.get(URL, {"lead": lead.pk})
    by_contact = client.get(URL, {"contact": lead.contact_id})

    assert ids(overdue) == [late.pk]
    assert overdue.json()["results"][0]["overdue"] is True
    assert sorted(ids(not_overdue)) == sorted([today.pk, done_late.pk, no_due.pk])
    assert all(row["overdue"] is False for row in not_overdue.json()["results"])
    assert sorted(ids(open_)) == sorted([late.pk, today.pk, no_due.pk])
    assert ids(by_assignee) == [late.pk]
    assert sorted(ids(due_today)) == sorted([late.pk, today.pk])
    assert ids(by_lead) == [today.pk] == ids(by_contact)


def test_who_sees_which_tasks(acme_manager, acme_csr, acme_rep):
    company = acme_manager.company
    csrs = TaskFactory(company=company, assignee=acme_csr.user)
    reps = TaskFactory(company=company, assignee=acme_rep.user)
    nobodys = TaskFactory(company=company)

    assert sorted(ids(acme_manager.client().get(URL))) == sorted([csrs.pk, reps.pk, nobodys.pk])
    assert ids(acme_csr.client().get(URL)) == [csrs.pk]
    assert ids(acme_rep.client().get(URL)) == [reps.pk]
    assert acme_csr.client().get(detail(reps)).status_code == 404
    assert acme_rep.client().post(detail(csrs, "complete/")).status_code == 404


def test_patch_changes_description_due_date_assignee_and_status(acme_csr, acme_rep):
    task = TaskFactory(company=acme_csr.company, assignee=acme_csr.user)
    client = acme_csr.client()

    response = client.patch(
        detail(task),
        {"description": "Bring the brochure", "due_at": None, "assignee": acme_rep.user.pk},
    )

    assert response.status_code == 200
    assert response.json()["assignee"]["id"] == acme_rep.user.pk
    task.refresh_from_db()
    assert (task.description, task.due_at, task.assignee) == (
        "Bring the brochure",
        None,
        acme_rep.user,
    )
    # Handed over: the CSR no longer sees it, the rep does.
    assert client.get(detail(task)).status_code == 404
    done = acme_rep.client().patch(detail(task), {"status": "done"})
    assert done.json()["completed_by"]["id"] == acme_rep.user.pk
    reopened = acme_rep.client().patch(detail(task), {"status": "open"})
    assert reopened.json()["completed_at"] is None and reopened.json()["completed_by"] is None


def test_patch_refuses_an_unknown_status_and_another_tenants_assignee(acme_csr, globex_manager):
    task = TaskFactory(company=acme_csr.company, assignee=acme_csr.user)
    client = acme_csr.client()

    assert "status" in error(client.patch(detail(task), {"status": "snoozed"}), 400)["details"]
    outsider = client.patch(detail(task), {"assignee": globex_manager.user.pk})
    assert "assignee" in error(outsider, 400)["details"]
    task.refresh_from_db()
    assert (task.status, task.assignee) == ("open", acme_csr.user)


def test_complete_is_idempotent_and_keeps_the_first_completion(acme_manager, acme_csr):
    task = TaskFactory(company=acme_csr.company, assignee=acme_csr.user)

    with time_machine.travel(NOW, tick=False):
        first = acme_csr.client().post(detail(task, "complete/"))
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        again = acme_manager.client().post(detail(task, "complete/"))

    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == "done"
    assert again.json()["completed_at"] == first.json()["completed_at"] == "2026-03-10T17:00:00Z"
    assert again.json()["completed_by"]["id"] == acme_csr.user.pk


def test_completing_a_cancelled_task_is_409(acme_csr):
    task = TaskFactory(company=acme_csr.company, assignee=acme_csr.user, status="cancelled")

    response = acme_csr.client().post(detail(task, "complete/"))

    assert error(response, 409)["code"] == "task_cancelled"
    task.refresh_from_db()
    assert task.status == "cancelled" and task.completed_at is None


def test_the_list_query_count_does_not_grow_with_the_page(acme_manager, acme_csr):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(12):
        TaskFactory(company=acme_manager.company, assignee=acme_csr.user, created_by=acme_csr.user)
    client = acme_manager.client()
    client.get(URL)

    counts = []
    for size in (2, 12):
        with CaptureQueriesContext(connection) as queries:
            assert len(ids(client.get(URL, {"page_size": size}))) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]
