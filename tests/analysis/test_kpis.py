"""The KPIs (metrics/…) against a small Acme whose every figure is worked out by hand.

Acme is in New York (EST, -05:00 in March 2026). The range is Mon 2 – Wed 4 March:

| call | started (NY)  | ans. | by  | analysis (effective)                 | objections    | SOP  |
|------|---------------|------|-----|--------------------------------------|---------------|------|
| c1   | Mar 2 10:00   | yes  | CSR | qualified, booked                    | price         | 80   |
| c2   | Mar 2 23:30 ¹ | yes  | CSR | qualified, not booked, appointment ² | price, timing | 60   |
| c3   | Mar 3 09:00   | yes  | CSR | unqualified, overridden qualified    | timing, scope | 90 ³ |
| c4   | Mar 3 11:00   | yes  | —   | qualified, booked overridden not     | none ⁵        | —    |
| c5   | Mar 4 08:00   | yes  | —   | unqualified, service not offered ⁴   | competitor    | 50   |
| c6   | Mar 4 12:00   | no   | —   | none (missed)                        |               |      |
| c7   | Mar 1 23:59   | yes  | CSR | qualified, booked (the day before)   | price         |      |
| c8   | Mar 5 00:00   | yes  | CSR | none (the day after)                 |               |      |

¹ 04:30 UTC on Mar 3: it counts on New York's Mar 2. ² an appointment made from the call
(the rep's, scheduled Mar 3, won). ³ the model said 40. ⁴ an older, non-current version said
booked. ⁵ overridden to none; the model said price, trust. Globex has a qualified, booked
call with a price objection in the range.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from analysis.models import CallAnalysis
from appointments.models import Appointment, Task
from tests.api.factories import (
    AppointmentFactory,
    CallFactory,
    ContactFactory,
    LeadFactory,
    TaskFactory,
)

NY = ZoneInfo("America/New_York")
RANGE = {"date_from": "2026-03-02", "date_to": "2026-03-04"}
METRICS = "/api/v1/metrics/"
CALLS = "/api/v1/calls/"


def at(day: int, hour: int, minute: int = 0) -> datetime.datetime:
    return datetime.datetime(2026, 3, day, hour, minute, tzinfo=NY)


def objections(*categories: str) -> list[dict]:
    return [
        {"category": c, "quote": f"about {c}", "utterance": 0, "resolved": False}
        for c in categories
    ]


def analyse(call, *, qualified, status, found=(), sop=None, overrides=None, version=1):
    return CallAnalysis.objects.create(
        company=call.company,
        call=call,
        version=version,
        is_current=True,
        analyzer="openai",
        prompt_version="v1",
        lead_quality="hot" if qualified else "unqualified",
        qualified=qualified,
        booking_status=status,
        objections=objections(*found),
        sop={"score": sop, "completed": [], "missed": []} if sop is not None else {},
        overrides=overrides or {},
    )


@pytest.fixture
def acme_calls(acme_manager, acme_csr, acme_rep, globex):
    company, csr, rep = acme_manager.company, acme_csr.user, acme_rep.user

    def call(started, *, answered=True, handled_by=None, company=company):
        contact = ContactFactory(company=company)
        return CallFactory(
            company=company,
            contact=contact,
            started_at=started,
            answered=answered,
            handled_by=handled_by,
        )

    c = {
        "c1": call(at(2, 10), handled_by=csr),
        "c2": call(at(2, 23, 30), handled_by=csr),
        "c3": call(at(3, 9), handled_by=csr),
        "c4": call(at(3, 11)),
        "c5": call(at(4, 8)),
        "c6": call(at(4, 12), answered=False),
        "c7": call(at(1, 23, 59), handled_by=csr),
        "c8": call(datetime.datetime(2026, 3, 5, tzinfo=NY), handled_by=csr),
    }
    analyse(c["c1"], qualified=True, status="booked", found=["price"], sop=80)
    analyse(c["c2"], qualified=True, status="not_booked", found=["price", "timing"], sop=60)
    analyse(
        c["c3"],
        qualified=False,
        status="not_booked",
        found=["timing", "scope"],
        sop=40,
        overrides={"qualified": True, "sop": {"score": 90, "completed": [], "missed": []}},
    )
    analyse(
        c["c4"],
        qualified=True,
        status="booked",
        found=["price", "trust"],
        overrides={"booking_status": "not_booked", "objections": []},
    )
    old = analyse(c["c5"], qualified=True, status="booked", found=["trust"], sop=10)
    CallAnalysis.objects.filter(pk=old.pk).update(is_current=False)
    analyse(
        c["c5"],
        qualified=False,
        status="service_not_offered",
        found=["competitor"],
        sop=50,
        version=2,
    )
    analyse(c["c7"], qualified=True, status="booked", found=["price"])
    outsider = call(at(3, 10), company=globex)
    analyse(outsider, qualified=True, status="booked", found=["price"], sop=100)

    # The rep's appointments: c2's (won), two more in the range (lost, pending), one
    # cancelled and one after the range, which do not count.
    lead = LeadFactory(company=company, contact=c["c2"].contact, assigned_rep=rep)
    AppointmentFactory(
        company=company,
        lead=lead,
        call=c["c2"],
        assigned_rep=rep,
        scheduled_start=at(3, 15),
        scheduled_end=at(3, 17),
        outcome=Appointment.Outcome.WON,
    )
    for start, fields in (
        (at(4, 9), {"outcome": Appointment.Outcome.LOST}),
        (at(4, 13), {}),
        (at(4, 15), {"status": Appointment.Status.CANCELLED, "outcome": "won"}),
        (at(10, 9), {"outcome": Appointment.Outcome.WON}),
    ):
        AppointmentFactory(
            company=company,
            assigned_rep=rep,
            scheduled_start=start,
            scheduled_end=start + datetime.timedelta(hours=1),
            **fields,
        )

    # Tasks created in the range: the CSR's open and overdue, the manager's open and due
    # later, one done; one open from before the range; Globex's.
    now = timezone.now()
    made = [
        (TaskFactory(company=company, assignee=csr, due_at=now - datetime.timedelta(days=1)), 2),
        (
            TaskFactory(
                company=company, assignee=acme_manager.user, due_at=now + datetime.timedelta(days=1)
            ),
            3,
        ),
        (TaskFactory(company=company, assignee=csr, status=Task.Status.DONE), 3),
        (TaskFactory(company=company, assignee=csr), -5),
        (TaskFactory(company=globex), 3),
    ]
    for task, day in made:
        created = at(day, 12) if day > 0 else at(1, 12) + datetime.timedelta(days=day)
        Task.objects.filter(pk=task.pk).update(created_at=created)
    return c


def get(member, kpi: str, **params):
    response = member.client().get(f"{METRICS}{kpi}/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_overview_every_figure(acme_manager, acme_calls):
    assert get(acme_manager, "overview", **RANGE) == {
        "date_from": "2026-03-02",
        "date_to": "2026-03-04",
        "calls": 6,  # c1–c6
        "answered": 5,
        "missed": 1,  # c6
        "qualified": 4,  # c1, c2, c3 (override), c4
        "qualified_rate": 4 / 5,  # of the 5 analysed
        "booked": 2,  # c1, c2 (its appointment); c4's override says not booked
        "booking_rate": 2 / 4,  # booked ÷ qualified
        "service_not_offered": 1,  # c5
        "qualified_unbooked": 2,  # c3, c4
        "avg_objections_per_qualified_call": (1 + 2 + 2 + 0) / 4,
        "avg_sop_score": (80 + 60 + 90 + 50) / 4,  # c3's override; c4 has none
        "open_tasks": 2,
        "overdue_tasks": 1,
        "recovery_rate": 0.0,  # c6 was missed and not recovered (messaging's figures)
    }


def test_booking_trend_has_every_day(acme_manager, acme_calls):
    body = get(acme_manager, "booking-trend", **RANGE)

    assert body["results"] == [
        {"date": "2026-03-02", "calls": 2, "qualified": 2, "booked": 2, "booking_rate": 1.0},
        {"date": "2026-03-03", "calls": 2, "qualified": 2, "booked": 0, "booking_rate": 0.0},
        {"date": "2026-03-04", "calls": 2, "qualified": 0, "booked": 0, "booking_rate": None},
    ]


def test_top_objections(acme_manager, acme_calls):
    body = get(acme_manager, "top-objections", **RANGE)

    # 4 calls raised any (c1, c2, c3, c5); c4's override removed its price and trust.
    assert body["results"] == [
        {"category": "price", "calls": 2, "share": 0.5},
        {"category": "timing", "calls": 2, "share": 0.5},
        {"category": "competitor", "calls": 1, "share": 0.25},
        {"category": "scope", "calls": 1, "share": 0.25},
    ]


def test_reps_one_row_per_person(acme_manager, acme_csr, acme_rep, acme_calls):
    body = get(acme_manager, "reps", **RANGE)

    csr, rep = body["results"]
    assert csr == {
        "user": {"id": acme_csr.user.pk, "name": acme_csr.user.name, "email": acme_csr.user.email},
        "calls": 3,  # handled c1, c2, c3
        "qualified": 3,
        "booked": 2,
        "booking_rate": 2 / 3,
        "appointments": 0,
        "won": 0,
        "close_rate": None,
        "avg_sop_score": pytest.approx((80 + 60 + 90) / 3),
    }
    assert rep["user"]["id"] == acme_rep.user.pk
    assert {k: v for k, v in rep.items() if k != "user"} == {
        "calls": 1,  # c2, booked into their appointment
        "qualified": 1,
        "booked": 1,
        "booking_rate": 1.0,
        "appointments": 3,  # won, lost, pending; not the cancelled one or the one after
        "won": 1,
        "close_rate": 1 / 2,  # won ÷ decided
        "avg_sop_score": 60.0,
    }


def test_time_zone_boundary_and_one_day(acme_manager, acme_calls):
    # c2 at 23:30 New York is 04:30 UTC the next day: it counts on New York's 2 March.
    day = get(acme_manager, "overview", date_from="2026-03-02", date_to="2026-03-02")
    before = get(acme_manager, "booking-trend", date_from="2026-03-01", date_to="2026-03-01")

    assert (day["calls"], day["booked"], day["booking_rate"]) == (2, 2, 1.0)
    # c7 at 23:59 on 1 March, alone on its day.
    assert before["results"] == [
        {"date": "2026-03-01", "calls": 1, "qualified": 1, "booked": 1, "booking_rate": 1.0}
    ]


def test_an_empty_range(acme_manager, acme_calls):
    empty = {"date_from": "2026-02-01", "date_to": "2026-02-02"}

    overview = get(acme_manager, "overview", **empty)
    trend = get(acme_manager, "booking-trend", **empty)

    assert {
        k: overview[k] for k in ("calls", "qualified", "booked", "open_tasks")
    } == dict.fromkeys(("calls", "qualified", "booked", "open_tasks"), 0)
    for rate in ("qualified_rate", "booking_rate", "avg_objections_per_qualified_call"):
        assert overview[rate] is None, rate
    assert overview["avg_sop_score"] is None
    assert [row["calls"] for row in trend["results"]] == [0, 0]
    assert get(acme_manager, "top-objections", **empty)["results"] == []


def test_the_outsider_sees_only_its_own(globex_manager, acme_calls):
    overview = get(globex_manager, "overview", **RANGE)
    objections = get(globex_manager, "top-objections", **RANGE)

    assert (overview["calls"], overview["booked"], overview["open_tasks"]) == (1, 1, 1)
    assert objections["results"] == [{"category": "price", "calls": 1, "share": 1.0}]
    assert get(globex_manager, "reps", **RANGE)["results"] == []


def test_a_csr_gets_their_own_figures(acme_csr, acme_rep, acme_calls):
    mine = get(acme_csr, "overview", **RANGE)

    assert (mine["calls"], mine["qualified"], mine["booked"]) == (3, 3, 2)
    assert (mine["open_tasks"], mine["overdue_tasks"]) == (1, 1)
    assert [row["user"]["id"] for row in get(acme_csr, "reps", **RANGE)["results"]] == [
        acme_csr.user.pk
    ]
    # Another person's figures are not theirs to see.
    response = acme_csr.client().get(f"{METRICS}overview/", {**RANGE, "rep": acme_rep.user.pk})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_a_manager_may_look_at_one_rep_and_a_rep_at_themselves(acme_manager, acme_rep, acme_calls):
    as_manager = get(acme_manager, "overview", **RANGE, rep=acme_rep.user.pk)
    as_rep = get(acme_rep, "overview", **RANGE)
    own = get(acme_rep, "overview", **RANGE, rep=acme_rep.user.pk)

    assert as_manager == as_rep == own
    assert (as_rep["calls"], as_rep["booked"]) == (1, 1)


@pytest.mark.parametrize("who", ["globex_manager", "acme_csr"])
def test_a_foreign_rep_is_403(acme_manager, acme_calls, who, request):
    # Globex's manager is no rep of Acme, nor is Acme's CSR a rep.
    stranger = request.getfixturevalue(who)

    response = acme_manager.client().get(f"{METRICS}reps/", {"rep": stranger.user.pk})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "monday"},
        {"date_from": "03/02/2026"},
        {"date_from": "2026-03-05", "date_to": "2026-03-04"},
        {"date_from": "2024-01-01", "date_to": "2026-03-04"},
        {"rep": "abc"},
        {"rep": 1, "csr": 2},
    ],
)
def test_bad_parameters_are_400(acme_manager, params):
    for kpi in ("overview", "booking-trend", "top-objections", "reps", "recovery"):
        response = acme_manager.client().get(f"{METRICS}{kpi}/", params)
        assert response.status_code == 400, (kpi, response.content)
        assert response.json()["error"]["code"] == "validation_error"


def test_the_default_range_is_the_last_30_days(acme_manager):
    body = get(acme_manager, "booking-trend")

    today = timezone.localdate(timezone=NY)
    assert body["date_to"] == today.isoformat()
    assert body["date_from"] == (today - datetime.timedelta(days=29)).isoformat()
    assert len(body["results"]) == 30
    # One end alone: the 30 days from or to it.
    since = get(acme_manager, "booking-trend", date_from="2026-03-02")
    until = get(acme_manager, "booking-trend", date_to="2026-03-02")
    assert (since["date_from"], since["date_to"]) == ("2026-03-02", "2026-03-31")
    assert (until["date_from"], until["date_to"]) == ("2026-02-01", "2026-03-02")


@pytest.mark.parametrize(
    ("kpi", "most"),
    # Each includes 3 for kpis.without_jit (in a test, its transaction is a savepoint:
    # SAVEPOINT, SET LOCAL jit = off, RELEASE) and 2 for the daily rollup (is it built,
    # which days are dirty); reps groups CSRs and sales reps apart.
    [("overview", 12), ("booking-trend", 10), ("top-objections", 10), ("reps", 13)],
)
def test_the_query_count_is_fixed(
    acme_manager, acme_calls, acme_rep, kpi, most, django_assert_max_num_queries
):
    client = acme_manager.client()
    client.get(f"{METRICS}{kpi}/", RANGE)  # warm the JWKS and membership caches

    with django_assert_max_num_queries(most):
        assert client.get(f"{METRICS}{kpi}/", {"date_from": "2026-01-01"}).status_code == 200


# --- the calls behind a figure -------------------------------------------------------------


def listed(member, **params) -> set[str]:
    response = member.client().get(CALLS, params)
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["results"]}


def test_the_calls_behind_each_figure(acme_manager, acme_calls):
    c = {name: call.pk for name, call in acme_calls.items()}

    assert listed(acme_manager, objection="price") == {c["c1"], c["c2"], c["c7"]}
    assert listed(acme_manager, objection="trust") == set()  # c4's override, c5's old version
    assert listed(acme_manager, booking_status="booked") == {c["c1"], c["c7"]}
    assert listed(acme_manager, booking_status="not_booked") == {c["c2"], c["c3"], c["c4"]}
    assert listed(acme_manager, booked="true") == {c["c1"], c["c2"], c["c7"]}
    assert listed(acme_manager, booked="false") == {c["c3"], c["c4"], c["c5"]}
    assert listed(acme_manager, qualified="false") == {c["c5"]}
    assert listed(acme_manager, qualified="true", objection="timing") == {c["c2"], c["c3"]}


def test_a_bad_drill_down_value_is_400(acme_manager):
    for params in ({"objection": "weather"}, {"booking_status": "maybe"}):
        response = acme_manager.client().get(CALLS, params)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "validation_error"
