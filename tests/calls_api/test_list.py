"""GET /api/v1/calls/: filters, order, cursor pagination, query count and roles."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls.models import Call
from calls.services import upsert_call
from otto.models import Membership
from tests.api.factories import CallFactory, ContactFactory

URL = "/api/v1/calls/"
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_a_row_carries_the_contract_fields(acme_manager, make_call):
    call = make_call(acme_manager.company, tags=["hvac"])

    [row] = acme_manager.client().get(URL).json()["results"]

    assert {
        "id",
        "external_id",
        "stage",
        "started_at",
        "duration_seconds",
        "answered",
        "direction",
        "customer_number",
        "tracking_number",
        "contact",
    } <= set(row)
    assert row["id"] == call.pk
    assert row["contact"] == {
        "id": call.contact.pk,
        "name": call.contact.name,
        "phone": call.contact.phone,
    }
    assert row["has_recording"] is False
    assert "recording" not in row


def test_newest_first_with_ties_broken_by_id(acme_csr):
    company = acme_csr.company
    older = CallFactory(company=company, started_at=T0)
    tie_a = CallFactory(company=company, started_at=T0 + timedelta(hours=1))
    tie_b = CallFactory(company=company, started_at=T0 + timedelta(hours=1))
    newest = CallFactory(company=company, started_at=T0 + timedelta(hours=2))

    assert ids(acme_csr.client().get(URL)) == [newest.pk, tie_b.pk, tie_a.pk, older.pk]


def test_the_cursor_walks_every_call_once_across_ties(acme_csr):
    company = acme_csr.company
    # 7 calls, three of them in the same instant, walked two at a time.
    starts = [T0, T0, T0, T0 + timedelta(minutes=1), T0 - timedelta(minutes=1)]
    starts += [T0 + timedelta(minutes=2), T0 - timedelta(minutes=2)]
    calls = [CallFactory(company=company, started_at=at) for at in starts]
    client = acme_csr.client()

    seen, url, pages = [], f"{URL}?page_size=2", 0
    while url:
        body = client.get(url).json()
        seen += [item["id"] for item in body["results"]]
        url, pages = body["next"], pages + 1

    expected = sorted(calls, key=lambda c: (c.started_at, c.pk), reverse=True)
    assert seen == [c.pk for c in expected]
    assert pages == 4


def test_a_call_not_ingested_yet_is_listed_from_the_moment_it_is_known(acme_csr):
    # a webhook without a start time, before ingest has read the call from the API
    call, _ = upsert_call(acme_csr.company, call_id="766970532")
    client = acme_csr.client()

    assert call.stage == Call.Stage.RECEIVED and call.started_at is not None
    assert ids(client.get(URL)) == [call.pk]
    assert client.get(f"{URL}{call.pk}/").status_code == 200


# --- filters, each on its own ---------------------------------------------------------------


@pytest.fixture
def two_calls(acme_manager):
    """A call that matches every filter below, and one that matches none."""
    company = acme_manager.company
    dana = ContactFactory(company=company)
    handled = CallFactory(
        company=company,
        started_at=T0,
        answered=True,
        direction=Call.Direction.OUTBOUND,
        stage=Call.Stage.FAILED,
        contact=dana,
        handled_by=acme_manager.user,
        tracking_number="+13035550142",
        tags=["hvac", "new customer"],
    )
    other = CallFactory(
        company=company,
        started_at=T0 - timedelta(days=3),
        answered=False,
        direction=Call.Direction.INBOUND,
        stage=Call.Stage.SKIPPED,
        contact=ContactFactory(company=company),
        tracking_number="+13035550143",
        tags=["plumbing"],
    )
    return handled, other


@pytest.mark.parametrize(
    "query",
    [
        {"started_after": "2026-03-01T00:00:00Z"},
        {"started_before": "2026-03-01T12:00:01Z", "started_after": "2026-02-28T00:00:00Z"},
        {"answered": "true"},
        {"direction": "outbound"},
        {"stage": "failed"},
        {"stage": ["failed", "analyzed"]},
        {"handled_by": "the manager"},
        {"contact": "the handled call's contact"},
        {"tracking_number": "(303) 555-0142"},
        {"tag": "new customer"},
    ],
    ids=lambda q: ",".join(q),
)
def test_each_filter_keeps_the_matching_call(acme_manager, two_calls, query):
    handled, _ = two_calls
    if query.get("handled_by"):
        query = {"handled_by": acme_manager.user.pk}
    if query.get("contact"):
        query = {"contact": handled.contact_id}

    assert ids(acme_manager.client().get(URL, query)) == [handled.pk]


def test_answered_false_lists_the_missed_calls(acme_manager, two_calls):
    _, missed = two_calls

    assert ids(acme_manager.client().get(URL, {"answered": "false"})) == [missed.pk]


def test_another_tenants_contact_id_matches_nothing(acme_manager, two_calls, globex):
    outsider = ContactFactory(company=globex)

    assert ids(acme_manager.client().get(URL, {"contact": outsider.pk})) == []


def test_a_bad_filter_value_is_400_in_the_error_shape(acme_manager):
    client = acme_manager.client()

    for query in ({"tracking_number": "555"}, {"stage": "nope"}, {"started_after": "monday"}):
        response = client.get(URL, query)
        assert response.status_code == 400, query
        assert response.json()["error"]["code"] == "validation_error"


# --- query count ----------------------------------------------------------------------------


def test_the_query_count_does_not_grow_with_the_page_size(
    acme_manager, django_assert_max_num_queries
):
    company = acme_manager.company
    for _ in range(30):
        CallFactory(
            company=company, contact=ContactFactory(company=company), handled_by=acme_manager.user
        )
    client = acme_manager.client()
    client.get(URL)  # warm: the JWKS fetch and the user's first sight

    counts = {}
    for size in (3, 30):
        with CaptureQueriesContext(connection) as queries:
            assert len(ids(client.get(URL, {"page_size": size}))) == size
        counts[size] = len(queries)
    with django_assert_max_num_queries(counts[3]):
        client.get(URL, {"page_size": 30})

    assert counts[3] == counts[30]


def test_a_page_loads_only_what_its_rows_show(acme_manager):
    # not the search vector (a transcript's worth of lexemes) nor the CSR's password hash
    CallFactory(company=acme_manager.company, handled_by=acme_manager.user)
    client = acme_manager.client()
    with CaptureQueriesContext(connection) as queries:
        (row,) = client.get(URL).json()["results"]

    assert row["handled_by"]["email"] == acme_manager.user.email
    page = [q["sql"] for q in queries if 'FROM "calls_call"' in q["sql"]]
    assert page
    assert not [sql for sql in page if "search_vector" in sql or '"password"' in sql]


# --- roles ------------------------------------------------------------------------------------


def test_manager_and_csr_see_every_call_of_their_tenant(acme_manager, acme_csr, globex):
    mine = [CallFactory(company=acme_manager.company) for _ in range(3)]
    CallFactory(company=globex)

    for member in (acme_manager, acme_csr):
        assert sorted(ids(member.client().get(URL))) == sorted(c.pk for c in mine)


def test_a_sales_rep_sees_no_call_outside_their_leads(acme_rep):
    # Reps see the calls behind the leads and appointments assigned to them, not the calls
    # they happened to handle (docs/calls.md; tests/appointments_api/test_calls_behind_leads).
    call = CallFactory(company=acme_rep.company, handled_by=acme_rep.user)
    client = acme_rep.client()

    assert ids(client.get(URL)) == []
    assert client.get(f"{URL}{call.pk}/").status_code == 404
    assert client.get(f"{URL}{call.pk}/recording/").status_code == 404


def test_a_revoked_member_is_refused(acme_csr):
    CallFactory(company=acme_csr.company)
    client = acme_csr.client()
    Membership.objects.filter(pk=acme_csr.membership.pk).update(revoked_at=T0)

    assert client.get(URL).status_code == 403
