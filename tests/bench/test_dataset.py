"""The benchmark dataset at CI size (10,000 calls, 100 tenants): bench/data.py's rows are
ones the API reads as the pipeline's, the KPIs agree with a computation from the
generator's own facts (not from SQL), and no list's query count grows with its page."""

from __future__ import annotations

import datetime
import statistics
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench import data
from bench.data import CallFacts, TenantFacts
from calls.models import Call
from calls.search import index_call

pytestmark = pytest.mark.django_db

CALLS = 10_000
TENANTS = 100


@pytest.fixture(scope="module")
def dataset(django_db_setup, django_db_blocker):
    """Loaded (committed) once for the module, and removed after it: each test still runs
    in its own transaction on top."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    with django_db_blocker.unblock():
        try:
            yield data.load(calls=CALLS, tenants=TENANTS, seed=7, now=now, keep=True)
        finally:
            data.empty()


def client_for(clerk, tenant: dict, role: str = "manager"):
    user = tenant["people"][role][0]
    sub = f"user_bench_{tenant['slug'].removeprefix('bench-')}_{role}_0"
    clerk_role = {"manager": "admin", "csr": "csr", "sales_rep": "rep"}[role]
    assert user
    return clerk.client(clerk.token(sub=sub, org_id=tenant["clerk_org_id"], org_role=clerk_role))


def bounds(tz: str, date_from: datetime.date, date_to: datetime.date):
    zone = ZoneInfo(tz)
    start = datetime.datetime.combine(date_from, datetime.time.min, zone)
    end = datetime.datetime.combine(date_to + datetime.timedelta(days=1), datetime.time.min, zone)
    return start, end


def rate(n, d):
    return None if not d else n / d


def booked(c: CallFacts) -> bool:
    return c.booking_status == "booked" or c.has_appointment


def expected_overview(facts: TenantFacts, start, end, now) -> dict:
    """DESIGN.md §9.6 / docs/kpis.md, from the facts the generator kept."""
    calls = [c for c in facts.calls if start <= c.started_at < end]
    analysed = [c for c in calls if c.analysed]
    qualified = [c for c in analysed if c.qualified]
    n_booked = sum(booked(c) for c in calls)
    sno = [c for c in analysed if c.booking_status == "service_not_offered" and not booked(c)]
    tasks = [t for t in facts.tasks if start <= t[0] < end and t[1] == "open"]
    missed = sum(not c.answered for c in calls)
    return {
        "calls": len(calls),
        "answered": sum(c.answered for c in calls),
        "missed": missed,
        "qualified": len(qualified),
        "qualified_rate": rate(len(qualified), len(analysed)),
        "booked": n_booked,
        "booking_rate": rate(n_booked, len(qualified)),
        "service_not_offered": len(sno),
        "qualified_unbooked": sum(
            1 for c in qualified if not booked(c) and c.booking_status != "service_not_offered"
        ),
        "avg_objections_per_qualified_call": rate(
            sum(len(c.objections) for c in qualified), len(qualified)
        ),
        "avg_sop_score": statistics.fmean(c.sop_score for c in analysed) if analysed else None,
        "open_tasks": len(tasks),
        "overdue_tasks": sum(1 for t in tasks if t[2] is not None and t[2] < now),
        "recovery_rate": rate(recovered(facts, calls), missed),
    }


def recovered(facts: TenantFacts, calls: list[CallFacts]) -> int:
    week = datetime.timedelta(days=7)
    return sum(
        1
        for c in calls
        if c.recovery is not None
        and any(
            a[4] == c.recovery["contact"]
            and a[2] != "cancelled"
            and c.recovery["started_at"] <= a[5] < c.recovery["started_at"] + week
            for a in facts.appointments
        )
    )


def expected_recovery(facts: TenantFacts, start, end) -> dict:
    calls = [c for c in facts.calls if start <= c.started_at < end]
    recoveries = [c.recovery for c in calls if c.recovery is not None]
    missed = sum(not c.answered for c in calls)
    waits = [
        (r["first_sent"] - r["started_at"]).total_seconds() for r in recoveries if r["first_sent"]
    ]
    replied = sum(
        1
        for r in recoveries
        if r["status"] == "replied"
        or any(at >= r["started_at"] for at in facts.inbound.get(r["contact"], []))
    )
    n_recovered = recovered(facts, calls)
    return {
        "missed_calls": missed,
        "texted": len(waits),
        "replied": replied,
        "recovered": n_recovered,
        "recovery_rate": rate(n_recovered, missed),
        "median_first_response_seconds": statistics.median(waits) if waits else None,
    }


def assert_close(actual: dict, expected: dict) -> None:
    for name, value in expected.items():
        if isinstance(value, float):
            assert actual[name] == pytest.approx(value, rel=1e-9), name
        else:
            assert actual[name] == value, name


def test_the_kpis_match_the_generators_own_figures(dataset, clerk):
    now = timezone.now()
    by_company = {f.company_id: f for f in dataset.facts}
    ranked = sorted(dataset.tenants, key=lambda t: -t["calls"])
    assert sum(t["calls"] for t in ranked) == CALLS
    # Zipf: the largest tenant has about a fifth of the calls, the median well under 1 %.
    assert 0.15 < ranked[0]["calls"] / CALLS < 0.25
    for tenant in (ranked[0], ranked[len(ranked) // 2]):
        facts = by_company[tenant["company"]]
        client = client_for(clerk, tenant)
        today = timezone.localdate(timezone=ZoneInfo(tenant["timezone"]))
        for days in (90, 366):  # the longest range the KPIs take
            date_from = today - datetime.timedelta(days=days - 1)
            params = {"date_from": date_from.isoformat(), "date_to": today.isoformat()}
            start, end = bounds(tenant["timezone"], date_from, today)

            overview = client.get("/api/v1/metrics/overview/", params)
            assert overview.status_code == 200, overview.content
            expected = expected_overview(facts, start, end, now)
            assert expected["calls"] > 0 and expected["booked"] > 0
            assert_close(overview.json(), expected)

            recovery = client.get("/api/v1/metrics/recovery/", params).json()
            assert_close(recovery, expected_recovery(facts, start, end))

            calls = [c for c in facts.calls if start <= c.started_at < end]
            counts = Counter(cat for c in calls for cat in set(c.objections))
            raised = sum(1 for c in calls if c.objections)
            top = client.get("/api/v1/metrics/top-objections/", params).json()["results"]
            assert {r["category"]: r["calls"] for r in top} == dict(counts)
            assert top[0]["share"] == pytest.approx(counts.most_common(1)[0][1] / raised)

            trend = client.get("/api/v1/metrics/booking-trend/", params).json()["results"]
            assert len(trend) == days
            zone = ZoneInfo(tenant["timezone"])
            per_day = Counter(c.started_at.astimezone(zone).date().isoformat() for c in calls)
            booked_per_day = Counter(
                c.started_at.astimezone(zone).date().isoformat() for c in calls if booked(c)
            )
            assert {r["date"]: r["calls"] for r in trend if r["calls"]} == dict(per_day)
            assert {r["date"]: r["booked"] for r in trend if r["booked"]} == dict(booked_per_day)

            reps = client.get("/api/v1/metrics/reps/", params).json()["results"]
            by_user = {r["user"]["id"]: r for r in reps}
            for csr in tenant["people"]["csr"]:
                theirs = [c for c in calls if c.handled_by == csr]
                assert by_user[csr]["calls"] == len(theirs)
                assert by_user[csr]["booked"] == sum(booked(c) for c in theirs)
            for rep in tenant["people"]["sales_rep"]:
                visits = [
                    a
                    for a in facts.appointments
                    if a[0] == rep and start <= a[1] < end and a[2] != "cancelled"
                ]
                assert by_user[rep]["appointments"] == len(visits)
                assert by_user[rep]["won"] == sum(a[3] == "won" for a in visits)


# "calling" is in every transcript ("Thanks for calling"): a page of 50 matches.
LISTS = ["calls/", "leads/", "appointments/", "tasks/", "threads/", "calls/?search=calling"]


def test_list_queries_do_not_grow_with_the_page(dataset, clerk):
    largest = max(dataset.tenants, key=lambda t: t["calls"])
    client = client_for(clerk, largest)
    for path in LISTS:
        counts = {}
        for size in (10, 50):
            separator = "&" if "?" in path else "?"
            with CaptureQueriesContext(connection) as queries:
                response = client.get(f"/api/v1/{path}{separator}page_size={size}")
            assert response.status_code == 200, response.content
            assert len(response.json()["results"]) == size, path
            counts[size] = len(queries)
        assert counts[10] == counts[50], (path, counts)


def test_the_rows_are_the_pipelines(dataset):
    largest = max(dataset.tenants, key=lambda t: t["calls"])
    calls = Call.objects.filter(company_id=largest["company"])
    # Every analysed call is done and has exactly one current analysis.
    done = calls.filter(stage=Call.Stage.DONE)
    assert done.count() == done.filter(analyses__is_current=True).count() > 0
    # The loader's search vector is the one the indexing stage computes.
    call = calls.filter(search_vector__isnull=False).exclude(tags=[]).first()
    assert call is not None
    loaded = call.search_vector
    index_call(call.pk)
    call.refresh_from_db()
    assert call.search_vector == loaded
