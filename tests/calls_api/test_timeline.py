"""GET /api/v1/contacts/{id}/timeline/: the contact's calls as typed timeline items."""

from datetime import UTC, datetime, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.factories import CallFactory, ContactFactory

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def timeline_url(contact) -> str:
    return f"/api/v1/contacts/{contact.pk}/timeline/"


def test_the_contacts_calls_newest_first_as_typed_items(acme_csr):
    company = acme_csr.company
    dana = ContactFactory(company=company)
    first = CallFactory(company=company, contact=dana, started_at=T0)
    second = CallFactory(company=company, contact=dana, started_at=T0 + timedelta(days=1))
    CallFactory(company=company, contact=ContactFactory(company=company))  # someone else

    response = acme_csr.client().get(timeline_url(dana))

    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert [(item["type"], item["data"]["id"]) for item in body["results"]] == [
        ("call", second.pk),
        ("call", first.pk),
    ]
    assert body["results"][0]["at"] == "2026-03-02T12:00:00Z"
    assert body["results"][0]["data"]["external_id"] == second.external_id


def test_pages_walk_every_item_once_across_equal_timestamps(acme_csr):
    company = acme_csr.company
    dana = ContactFactory(company=company)
    starts = [T0, T0, T0, T0 + timedelta(hours=1), T0 - timedelta(hours=1)]
    calls = [CallFactory(company=company, contact=dana, started_at=at) for at in starts]
    client = acme_csr.client()

    seen, url = [], f"{timeline_url(dana)}?page_size=2"
    while url:
        body = client.get(url).json()
        seen += [item["data"]["id"] for item in body["results"]]
        url = body["next"]

    expected = sorted(calls, key=lambda c: (c.started_at, c.pk), reverse=True)
    assert seen == [c.pk for c in expected]


def test_the_query_count_does_not_grow_with_the_page_size(acme_csr):
    company = acme_csr.company
    dana = ContactFactory(company=company)
    for _ in range(20):
        CallFactory(company=company, contact=dana, handled_by=acme_csr.user)
    client = acme_csr.client()
    client.get(timeline_url(dana))

    counts = []
    for size in (2, 20):
        with CaptureQueriesContext(connection) as queries:
            assert len(client.get(timeline_url(dana), {"page_size": size}).json()["results"]) == (
                size
            )
        counts.append(len(queries))

    assert counts[0] == counts[1]


def test_a_bad_cursor_is_400(acme_csr):
    dana = ContactFactory(company=acme_csr.company)

    response = acme_csr.client().get(timeline_url(dana), {"cursor": "not-a-cursor"})

    assert response.status_code == 400
    assert "cursor" in response.json()["error"]["details"]


def test_the_outsider_gets_404(acme, globex_manager):
    dana = ContactFactory(company=acme)
    CallFactory(company=acme, contact=dana)

    response = globex_manager.client().get(timeline_url(dana))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_sales_rep_may_not_read_contacts(acme_rep):
    dana = ContactFactory(company=acme_rep.company)

    assert acme_rep.client().get(timeline_url(dana)).status_code == 403
