"""leads/, leads/{id}/ (GET, PATCH) and leads/{id}/history/."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from appointments.models import Lead, LeadStatusChange
from appointments.services import change_lead_status, open_lead
from tests.api.factories import ContactFactory, LeadFactory
from tests.appointments_api.conftest import error, ids

URL = "/api/v1/leads/"
Status = Lead.Status


def detail(lead: Lead, suffix: str = "") -> str:
    return f"{URL}{lead.pk}/{suffix}"


def test_the_list_shows_the_minimum_fields_newest_first(acme_csr, acme_rep):
    company = acme_csr.company
    older = LeadFactory(company=company, assigned_rep=acme_rep.user, score=80)
    newer = LeadFactory(company=company)

    response = acme_csr.client().get(URL)

    assert ids(response) == [newer.pk, older.pk]
    row = response.json()["results"][1]
    assert set(row) >= {
        "id",
        "contact",
        "status",
        "source",
        "assigned_rep",
        "score",
        "last_contacted_at",
        "created_at",
    }
    assert row["contact"] == {
        "id": older.contact.pk,
        "name": older.contact.name,
        "phone": older.contact.phone,
    }
    assert row["assigned_rep"]["id"] == acme_rep.user.pk
    assert row["score"] == 80


def test_filters_status_rep_source_and_search(acme_manager, acme_rep):
    company = acme_manager.company
    hot = LeadFactory(company=company, status=Status.HOT, assigned_rep=acme_rep.user)
    booked = LeadFactory(company=company, status=Status.QUALIFIED_BOOKED, source="Yelp")
    dana = LeadFactory(
        company=company, contact=ContactFactory(company=company, name="Dana Whitaker")
    )
    client = acme_manager.client()

    statuses = client.get(URL, {"status": ["hot", "qualified_booked"]})
    by_rep = client.get(URL, {"assigned_rep": acme_rep.user.pk})
    unassigned = client.get(URL, {"unassigned": "true"})
    by_source = client.get(URL, {"source": "yelp"})
    by_name = client.get(URL, {"search": "whitaker"})
    by_phone = client.get(URL, {"search": dana.contact.phone[-7:]})

    assert sorted(ids(statuses)) == sorted([hot.pk, booked.pk])
    assert ids(by_rep) == [hot.pk]
    assert sorted(ids(unassigned)) == sorted([booked.pk, dana.pk])
    assert ids(by_source) == [booked.pk]
    assert ids(by_name) == [dana.pk] == ids(by_phone)
    assert error(client.get(URL, {"status": "sold"}), 400)["code"] == "validation_error"


def test_the_date_range_is_in_the_tenants_time_zone(acme_manager):
    # Acme is in New York: 10 March runs from 05:00 UTC (EDT starts on the 8th: 04:00).
    company = acme_manager.company
    company.timezone = "America/New_York"
    company.save()
    late_on_9th = LeadFactory(company=company)
    early_on_10th = LeadFactory(company=company)
    on_11th = LeadFactory(company=company)
    for lead, at in (
        (late_on_9th, datetime(2026, 3, 10, 3, 30, tzinfo=UTC)),  # 23:30 on the 9th
        (early_on_10th, datetime(2026, 3, 10, 4, 30, tzinfo=UTC)),  # 00:30 on the 10th
        (on_11th, datetime(2026, 3, 11, 14, tzinfo=UTC)),
    ):
        Lead.objects.filter(pk=lead.pk).update(created_at=at)
    client = acme_manager.client()

    only_10th = client.get(URL, {"date_from": "2026-03-10", "date_to": "2026-03-10"})
    from_10th = client.get(URL, {"date_from": "2026-03-10"})

    assert ids(only_10th) == [early_on_10th.pk]
    assert ids(from_10th) == [on_11th.pk, early_on_10th.pk]
    assert error(client.get(URL, {"date_from": "10/03/2026"}), 400)["details"]["date_from"]
    # Ends beyond the calendar bound nothing rather than failing.
    assert len(ids(client.get(URL, {"date_to": "9999-12-31"}))) == 3
    company.timezone = "Asia/Tokyo"
    company.save()
    assert len(ids(client.get(URL, {"date_from": "0001-01-01"}))) == 3


def test_a_rep_sees_only_their_leads(acme_rep, acme_rep2):
    company = acme_rep.company
    mine = LeadFactory(company=company, assigned_rep=acme_rep.user)
    theirs = LeadFactory(company=company, assigned_rep=acme_rep2.user)
    LeadFactory(company=company)
    client = acme_rep.client()

    assert ids(client.get(URL)) == [mine.pk]
    assert client.get(detail(mine)).status_code == 200
    assert error(client.get(detail(theirs)), 404)["code"] == "not_found"
    assert client.get(detail(theirs, "history/")).status_code == 404


@pytest.mark.parametrize("role", ["manager", "csr"])
def test_the_office_changes_status_and_the_history_names_them(acme_manager, acme_csr, role):
    member = {"manager": acme_manager, "csr": acme_csr}[role]
    lead = open_lead(member.company.pk, ContactFactory(company=member.company).pk)

    response = member.client().patch(
        detail(lead), {"status": "nurturing", "reason": "wants a call in spring"}
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "nurturing" and response.json()["is_active"] is True
    history = member.client().get(detail(lead, "history/")).json()
    assert [(row["from_status"], row["to_status"]) for row in history] == [
        ("", "new"),
        ("new", "nurturing"),
    ]
    assert history[0]["actor"] is None  # opened by the pipeline
    assert history[1]["actor"]["id"] == member.user.pk
    assert history[1]["reason"] == "wants a call in spring"


def test_closing_a_lead_makes_it_inactive_and_unchanged_status_writes_no_history(acme_manager):
    lead = LeadFactory(company=acme_manager.company, status=Status.HOT)
    client = acme_manager.client()

    client.patch(detail(lead), {"status": "closed_lost"})
    again = client.patch(detail(lead), {"status": "closed_lost", "score": 10})

    assert again.status_code == 200
    assert again.json()["is_active"] is False and again.json()["closed_at"]
    assert again.json()["score"] == 10
    assert LeadStatusChange.objects.filter(lead=lead).count() == 1


def test_assign_a_rep_score_and_deal_size(acme_csr, acme_rep):
    lead = LeadFactory(company=acme_csr.company)

    response = acme_csr.client().patch(
        detail(lead), {"assigned_rep": acme_rep.user.pk, "score": 70, "deal_size": "4200.50"}
    )

    assert response.status_code == 200
    lead.refresh_from_db()
    assert (lead.assigned_rep, lead.score, lead.deal_size) == (
        acme_rep.user,
        70,
        Decimal("4200.50"),
    )
    assert response.json()["deal_size"] == "4200.50"
    assert not LeadStatusChange.objects.filter(lead=lead).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "sold"}, "status"),
        ({"deal_size": "-1.00"}, "deal_size"),
        ({"score": 101}, "score"),
        ({"status": "hot", "assigned_rep": "csr"}, "assigned_rep"),
        ({"status": "hot", "assigned_rep": "outsider"}, "assigned_rep"),
        ({"status": "hot", "assigned_rep": 987654321}, "assigned_rep"),
    ],
)
def test_bad_input_is_400_and_writes_nothing(acme_manager, acme_csr, globex_manager, body, field):
    lead = LeadFactory(company=acme_manager.company, status=Status.WARM)
    people = {"csr": acme_csr.user.pk, "outsider": globex_manager.user.pk}
    body = {key: people.get(value, value) for key, value in body.items()}

    response = acme_manager.client().patch(detail(lead), body)

    details = error(response, 400)["details"]
    assert field in details
    lead.refresh_from_db()
    assert lead.status == Status.WARM and lead.assigned_rep is None
    assert not LeadStatusChange.objects.filter(lead=lead).exists()


def test_a_rep_may_not_change_a_lead(acme_rep):
    lead = LeadFactory(company=acme_rep.company, assigned_rep=acme_rep.user)

    response = acme_rep.client().patch(detail(lead), {"status": "closed_won"})

    assert error(response, 403)["code"] == "permission_denied"
    lead.refresh_from_db()
    assert lead.status == Status.NEW


def test_reopening_a_closed_lead_when_the_contact_has_another_is_409(acme_manager):
    company = acme_manager.company
    contact = ContactFactory(company=company)
    closed = LeadFactory(company=company, contact=contact)
    change_lead_status(closed, Status.CLOSED_LOST, actor=None)
    active = LeadFactory(company=company, contact=contact)

    response = acme_manager.client().patch(detail(closed), {"status": "nurturing"})

    body = error(response, 409)
    assert body["code"] == "active_lead_exists" and body["details"] == {"lead": active.pk}
    closed.refresh_from_db()
    assert closed.status == Status.CLOSED_LOST and not closed.is_active
    assert LeadStatusChange.objects.filter(lead=closed).count() == 1


def test_the_list_query_count_does_not_grow_with_the_page(acme_manager, acme_rep):
    company = acme_manager.company
    for _ in range(12):
        LeadFactory(company=company, assigned_rep=acme_rep.user)
    client = acme_manager.client()
    client.get(URL)  # warm the per-process caches (JWKS, membership)

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for size in (2, 12):
        with CaptureQueriesContext(connection) as queries:
            assert len(ids(client.get(URL, {"page_size": size}))) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]
