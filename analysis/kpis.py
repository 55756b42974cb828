"""The KPIs (DESIGN.md §9.6), each one aggregate query over the calls in a date range.

Definitions (docs/kpis.md says them for people, with the SQL):
- a call is in the range when it *started* on a day from ``date_from`` to ``date_to`` in
  the company's time zone;
- every analysis field is read as its effective value: a person's override
  (``overrides->'field'``) over the model's (:func:`analysis.selectors.effective_fields`,
  in SQL);
- **booked**: the current analysis says ``booked``, or an appointment was made from the
  call (appointments registers that condition here: analysis never imports it);
- **qualified**: the analysis says qualified, or the call is booked (a booked job is a
  qualified lead, so booked ⊆ qualified and the booking rate stays within 0–1);
- **booking rate** = booked ÷ qualified; **qualified rate** = qualified ÷ analysed calls;
- **close rate** = won ÷ decided (won + lost) appointments scheduled in the range.

analysis sits below appointments and messaging: what only they know (appointments made
from a call, task and appointment counts, recovery) reaches the KPIs through
:func:`register_outcomes` and :func:`register_recovery`, filled in their ``ready()``.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import operator
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, get_args
from zoneinfo import ZoneInfo

from django.db.models import (
    Count,
    F,
    FilteredRelation,
    FloatField,
    Func,
    IntegerField,
    Lookup,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, TruncDate
from django.db.models.lookups import GreaterThan

from analysis.effective import effective
from analysis.models import CallAnalysis, KpiDay
from analysis.schema import ObjectionCategory
from calls import selectors as call_selectors
from calls.models import Call
from otto.models import Company, Membership, Role, User
from otto.sql import Median, local_settings

CATEGORIES: tuple[str, ...] = get_args(ObjectionCategory)
Booked = CallAnalysis.BookingStatus


# --- what the layers above contribute ------------------------------------------------------


@dataclass(frozen=True)
class Outcomes:
    """The KPI figures appointments owns. ``booked_call``: a condition over ``Call`` (an
    appointment was made from it). ``tasks(company, start, end, assignee)`` →
    ``{"open_tasks", "overdue_tasks"}``. ``appointments(company, start, end, reps)`` →
    ``{rep id: {"appointments", "won", "decided"}}``. Each is one query."""

    booked_call: Callable[[], Q]
    tasks: Callable[[Company, datetime.datetime, datetime.datetime, User | None], dict[str, int]]
    appointments: Callable[
        [Company, datetime.datetime, datetime.datetime, list[int]], dict[int, dict[str, int]]
    ]
    # The sales reps whose calls a call is (the rep scope, calls.selectors.rep_condition,
    # as columns): {name: an expression over Call giving one rep's user id or null}.
    call_reps: Callable[[], dict[str, Any]] | None = None


@dataclass(frozen=True)
class RecoveryFigures:
    """What messaging registers for metrics/recovery/ and the overview's recovery rate, all
    per call (a call has at most one recovery), so the daily rollup keeps them like
    ``booked``. ``conditions(company)`` → ``{"texted", "replied", "recovered"}``, each a
    condition over Call; ``response_seconds(company)`` → an expression over Call: seconds
    from the missed call to its recovery's first text, or null; ``settings``: the Company
    fields they read (a change rebuilds the rollup)."""

    conditions: Callable[[Company], dict[str, Q]]
    response_seconds: Callable[[Company], Any]
    settings: tuple[str, ...] = ()


RECOVERY_COUNTS = ("texted", "replied", "recovered")

# What the apps above registered (one each); None: not installed, or not built yet.
_registered: dict[str, Any] = {"outcomes": None, "recovery": None}

RECOVERY_FIELDS = (
    "missed_calls",
    "texted",
    "replied",
    "recovered",
    "recovery_rate",
    "median_first_response_seconds",
)
RECOVERY_PENDING = "Missed-call recovery (messaging) is not installed: its figures are null."


def register_outcomes(outcomes: Outcomes) -> None:
    _registered["outcomes"] = outcomes


def register_recovery(recovery: RecoveryFigures) -> None:
    _registered["recovery"] = recovery


def _recovery() -> RecoveryFigures | None:
    return _registered["recovery"]


def figure_settings() -> tuple[str, ...]:
    """The Company fields the call figures depend on besides its time zone."""
    recovery = _recovery()
    return recovery.settings if recovery else ()


def response_seconds(company: Company) -> Any:
    """Per call, seconds to its recovery's first text (null: none), or None without
    messaging: what the median first response is taken over."""
    recovery = _recovery()
    return recovery.response_seconds(company) if recovery else None


def _outcomes() -> Outcomes | None:
    return _registered["outcomes"]


# --- the range and whose figures ------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Whose figures, over which days: ``person`` None is the whole tenant."""

    company: Company
    date_from: datetime.date
    date_to: datetime.date
    person: User | None = None
    role: str = Role.MANAGER

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.company.timezone)

    @property
    def bounds(self) -> tuple[datetime.datetime, datetime.datetime]:
        """[start, end) in UTC: midnight of ``date_from`` to midnight after ``date_to``."""
        start = datetime.datetime.combine(self.date_from, datetime.time.min, self.zone)
        end = datetime.datetime.combine(
            self.date_to + datetime.timedelta(days=1), datetime.time.min, self.zone
        )
        return start.astimezone(datetime.UTC), end.astimezone(datetime.UTC)


def person_calls(calls: QuerySet[Call], person: User, role: str) -> QuerySet[Call]:
    """A person's calls: a sales rep's are the ones ``calls/`` lists for them (the rep
    scope: their leads' and appointments' calls); anyone else's the calls they handled."""
    if role == Role.SALES_REP:
        return call_selectors.visible_calls(calls, user=person, role=Role.SALES_REP)
    return calls.filter(handled_by=person)


# --- the effective analysis in SQL ----------------------------------------------------------


class HasObjection(Lookup):
    """The (effective) objections array holds an item of this ``category``: ``@>`` on
    PostgreSQL, JSON1's ``json_each`` on SQLite (the calls list filter runs on both)."""

    lookup_name = "has_objection"
    prepare_rhs = False

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        sql = f"{lhs} @> jsonb_build_array(jsonb_build_object('category', ({rhs})::text))"
        return sql, [*lhs_params, *rhs_params]

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        # Compiled SQL with placeholders; the category travels as a parameter.
        sql = (
            f"EXISTS (SELECT 1 FROM json_each({lhs}) AS item "  # noqa: S608
            f"WHERE json_extract(item.value, '$.category') = {rhs})"
        )
        return sql, [*lhs_params, *rhs_params]


def analysis_conditions() -> dict[str, Q]:
    """The conditions behind the figures, over a call with its current analysis joined as
    ``current`` (:func:`with_current`). ``booked`` includes an appointment made from it."""
    booked = Q(current__effective_booking_status=Booked.BOOKED)
    if (outcomes := _outcomes()) is not None:
        booked |= outcomes.booked_call()
    return {
        "analysed": Q(current__id__isnull=False),
        "booked": booked,
        "qualified": Q(current__effective_qualified=True) | booked,
        "service_not_offered": Q(current__effective_booking_status=Booked.SERVICE_NOT_OFFERED)
        & ~booked,
    }


def has_objection(category: str) -> Q:
    """The current analysis' (effective) objections raise ``category``: what top objections
    counts and ``calls/?objection=`` lists."""
    return Q(HasObjection(OBJECTIONS, Value(category)))


def scoped_calls(scope: Scope) -> QuerySet[Call]:
    """The scope's calls in the range, their current analysis joined as ``current``."""
    start, end = scope.bounds
    calls: QuerySet[Call] = Call.objects.filter(
        company=scope.company, started_at__gte=start, started_at__lt=end
    )
    if scope.person is not None:
        calls = person_calls(calls, scope.person, scope.role)
    return with_current(calls)


def with_current(calls: QuerySet[Call]) -> QuerySet[Call]:
    """Calls with their current analysis LEFT JOINed as ``current`` (null: none yet)."""
    return calls.alias(current=FilteredRelation("analyses", condition=Q(analyses__is_current=True)))


SOP_SCORE = Cast(
    KeyTextTransform("score", effective("sop", "current__")), output_field=FloatField()
)
# The stored effective columns (analysis.effective, CallAnalysis.effective_*).
OBJECTIONS = F("current__effective_objections")
OBJECTION_COUNT = Func(OBJECTIONS, function="jsonb_array_length", output_field=IntegerField())


def rate(numerator: float | None, denominator: float | None) -> float | None:
    """A fraction 0–1; null when there is nothing to divide by."""
    if not denominator or numerator is None:
        return None
    return numerator / denominator


def call_figures(company: Company) -> dict[str, Any]:
    """The per-call figures, as aggregates over ``company``'s calls with ``current``
    joined: what the overview counts from the raw tables and
    :class:`~analysis.models.KpiDay` stores per day (:func:`figures_of` names them as its
    columns). Recovery's (:data:`RECOVERY_COUNTS`) only when messaging registered them."""
    c = analysis_conditions()
    qualified = c["qualified"]
    recovery = _recovery()
    conditions = recovery.conditions(company) if recovery else {}
    extra = {name: Count("pk", filter=conditions[name]) for name in conditions}
    return {
        **extra,
        "calls": Count("pk"),
        # Named apart from Call.answered, which the filters and the grouping read.
        "answered_calls": Count("pk", filter=Q(answered=True)),
        "missed": Count("pk", filter=Q(answered=False)),
        "analysed": Count("pk", filter=c["analysed"]),
        "qualified": Count("pk", filter=qualified),
        "booked": Count("pk", filter=c["booked"]),
        "service_not_offered": Count("pk", filter=c["service_not_offered"]),
        "qualified_unbooked": Count(
            "pk", filter=qualified & ~c["booked"] & ~c["service_not_offered"]
        ),
        "objections": Sum(OBJECTION_COUNT, filter=qualified),
        "any_objection": Count("pk", filter=Q(GreaterThan(OBJECTION_COUNT, 0))),
        "sop_sum": Sum(SOP_SCORE),
        "sop_count": Count(SOP_SCORE),
    }


def objection_figures() -> dict[str, Count]:
    """Per category, the calls whose (effective) objections raise it, as ``objection_<c>``."""
    return {
        f"objection_{category}": Count("pk", filter=has_objection(category))
        for category in CATEGORIES
    }


def figures_of(row: dict[str, Any]) -> dict[str, Any]:
    """A row of :func:`call_figures` under KpiDay's column names."""
    figures = dict(row)
    figures["answered"] = figures.pop("answered_calls")
    return figures


def rep_rows(
    calls: QuerySet[Call], figures: dict[str, Any], *group: str, reps: set[int] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``figures`` over ``calls`` grouped by ``group`` and by the sales reps each call is
    theirs through (what appointments registered, :attr:`Outcomes.call_reps`), as ``(rep,
    row)``: a call counts once for each rep however many ways it is theirs. Only the
    ``reps`` given, when given; none without appointments. The daily rollup's rep rows and
    the raw tables' reps both come from here, so they count alike."""
    outcomes = _outcomes()
    if outcomes is None or outcomes.call_reps is None:
        return
    columns = outcomes.call_reps()
    if reps is None:
        theirs = [Q(**{f"{name}__isnull": False}) for name in columns]
    else:
        theirs = [Q(**{f"{name}__in": reps}) for name in columns]
    rows = calls.annotate(**columns).filter(functools.reduce(operator.or_, theirs))
    for row in rows.values(*group, *columns).annotate(**figures).order_by():
        found = {row[name] for name in columns} - {None}
        for rep in found if reps is None else found & reps:
            yield rep, row


def _rollup() -> Any:
    from analysis import rollup  # it builds on this module's figures

    return rollup


def scope_figures(
    scope: Scope, *, by_objection: bool = False, median_response: bool = False
) -> tuple[dict[str, Any], dict[str, int]]:
    """The scope's call figures and, with ``by_objection``, its calls per objection
    category; with ``median_response`` the figures hold ``median_response`` too, the median
    of recovery's seconds to the first text. Summed from the daily rollup where it can
    answer (:func:`analysis.rollup.fresh_days`), else counted from the raw tables."""
    rollup = _rollup()
    days = rollup.fresh_days(scope)
    by_category: dict[str, int] = dict.fromkeys(CATEGORIES, 0) if by_objection else {}
    if days is not None:
        row = rollup.sums(days)
        if by_objection:
            for counts in days.values_list("objection_calls", flat=True):
                for category, calls in counts.items():
                    if category in by_category:  # a category since retired is not reported
                        by_category[category] += calls
        if median_response:
            waits = [w for ws in days.values_list("response_seconds", flat=True) for w in ws]
            row["median_response"] = statistics.median(waits) if waits else None
        return row, by_category
    extra: dict[str, Any] = {**objection_figures()} if by_objection else {}
    if median_response:
        extra["median_response"] = Median(response_seconds(scope.company))
    row = scoped_calls(scope).aggregate(**call_figures(scope.company), **extra)
    for category in by_category:
        by_category[category] = row.pop(f"objection_{category}")
    return figures_of(row), by_category


@contextlib.contextmanager
def without_jit() -> Iterator[None]:
    """Run the KPI queries with PostgreSQL's JIT compiler off.

    A KPI's aggregate over a large tenant's 90 days has a planner cost past
    ``jit_inline_above_cost``, and PostgreSQL then compiles it before running it: 3.4 s of
    inlining and optimisation for 0.6 s of execution on the benchmark's largest tenant
    (docs/performance.md). It holds for the KPI's transaction only.
    """
    with local_settings(jit="off"):
        yield


# --- the endpoints' figures -----------------------------------------------------------------


def overview(scope: Scope) -> dict[str, Any]:
    row, _ = scope_figures(scope)
    tasks: dict[str, int | None] = {"open_tasks": None, "overdue_tasks": None}
    start, end = scope.bounds
    if (outcomes := _outcomes()) is not None:
        tasks.update(outcomes.tasks(scope.company, start, end, scope.person))
    return {
        "calls": row["calls"],
        "answered": row["answered"],
        "missed": row["missed"],
        "qualified": row["qualified"],
        "booked": row["booked"],
        "service_not_offered": row["service_not_offered"],
        "qualified_unbooked": row["qualified_unbooked"],
        "avg_sop_score": rate(row["sop_sum"], row["sop_count"]),
        "qualified_rate": rate(row["qualified"], row["analysed"]),
        "booking_rate": rate(row["booked"], row["qualified"]),
        "avg_objections_per_qualified_call": rate(row["objections"] or 0, row["qualified"]),
        **tasks,
        "recovery_rate": rate(row["recovered"], row["missed"]) if _recovery() else None,
    }


def booking_trend(scope: Scope) -> list[dict[str, Any]]:
    """One row per day of the range (the company's days), days with no call included."""
    stored = _rollup().fresh_days(scope)
    if stored is not None:
        rows = (
            stored.values("day")
            .annotate(calls=Sum("calls"), qualified=Sum("qualified"), booked=Sum("booked"))
            .order_by("day")
        )
    else:
        c = analysis_conditions()
        rows = (
            scoped_calls(scope)
            .annotate(day=TruncDate("started_at", tzinfo=scope.zone))
            .values("day")
            .annotate(
                calls=Count("pk"),
                qualified=Count("pk", filter=c["qualified"]),
                booked=Count("pk", filter=c["booked"]),
            )
            .order_by("day")
        )
    by_day = {row["day"]: row for row in rows}
    days = (scope.date_to - scope.date_from).days + 1
    trend = []
    for offset in range(days):
        day = scope.date_from + datetime.timedelta(days=offset)
        row = by_day.get(day, {"calls": 0, "qualified": 0, "booked": 0})
        trend.append(
            {
                "date": day,
                "calls": row["calls"],
                "qualified": row["qualified"],
                "booked": row["booked"],
                "booking_rate": rate(row["booked"], row["qualified"]),
            }
        )
    return trend


def top_objections(scope: Scope) -> list[dict[str, Any]]:
    """Per category, the calls that raised it at least once; ``share`` is of the calls
    with any objection. Categories no call raised are left out; most calls first."""
    row, by_category = scope_figures(scope, by_objection=True)
    results = [
        {"category": c, "calls": calls, "share": rate(calls, row["any_objection"])}
        for c, calls in by_category.items()
        if calls
    ]
    return sorted(results, key=lambda r: (-r["calls"], CATEGORIES.index(r["category"])))


PERSON_FIGURES = ("calls", "booked", "qualified", "sop_sum", "sop_count")


def reps(scope: Scope, people: list[tuple[User, str]]) -> list[dict[str, Any]]:
    """One row per person (CSRs and sales reps): their calls (:func:`person_calls`) with
    booked, qualified and SOP score, and the appointments assigned to them that are
    scheduled in the range. At most three queries whatever the number of people.

    The calls are grouped, not counted with one conditional aggregate per person: 160
    aggregates over a large tenant's 90 days took seconds (docs/performance.md). They are
    the people's rows of the daily rollup (:mod:`analysis.rollup`). Where it cannot answer,
    a CSR's calls are grouped by ``handled_by`` and a sales rep's by the reps each call is
    theirs through (:attr:`Outcomes.call_reps`), a call counted once per rep however many
    ways.
    """
    totals: dict[int, dict[str, float]] = {}

    def add(user_id: int, row: dict[str, Any]) -> None:
        mine = totals.setdefault(user_id, dict.fromkeys(PERSON_FIGURES, 0))
        for name in PERSON_FIGURES:
            mine[name] += row[name] or 0

    office = [u.pk for u, role in people if role != Role.SALES_REP]
    sales = {u.pk for u, role in people if role == Role.SALES_REP}
    days = _rollup().range_days(scope.company, scope.date_from, scope.date_to)
    if days is not None:
        sums = {name: Sum(name) for name in PERSON_FIGURES}
        for kind, ids in ((KpiDay.Kind.HANDLER, office), (KpiDay.Kind.REP, sales)):
            if ids:
                mine = days.filter(kind=kind, person__in=ids).values("person")
                for grouped in mine.annotate(**sums):
                    add(grouped["person"], grouped)
    else:
        calls = scoped_calls(Scope(scope.company, scope.date_from, scope.date_to))
        figures = call_figures(scope.company)
        figures = {name: f for name, f in figures.items() if name in PERSON_FIGURES}
        if office:
            by_handler = calls.filter(handled_by__in=office).values("handled_by")
            for grouped in by_handler.annotate(**figures):
                add(grouped["handled_by"], dict(grouped))
        if sales:
            for user_id, grouped in rep_rows(calls, figures, reps=sales):
                add(user_id, grouped)
    outcomes = _outcomes()
    start, end = scope.bounds
    visits: dict[int, dict[str, int]] = {}
    if outcomes is not None:
        visits = outcomes.appointments(scope.company, start, end, [u.pk for u, _ in people])
    results = []
    for user, _role in people:
        mine = visits.get(user.pk, {"appointments": 0, "won": 0, "decided": 0})
        figures_of = totals.get(user.pk, dict.fromkeys(PERSON_FIGURES, 0))
        booked, qualified = int(figures_of["booked"]), int(figures_of["qualified"])
        results.append(
            {
                "user": {"id": user.pk, "name": user.name, "email": user.email},
                "calls": int(figures_of["calls"]),
                "qualified": qualified,
                "booked": booked,
                "booking_rate": rate(booked, qualified),
                "appointments": mine["appointments"],
                "won": mine["won"],
                "close_rate": rate(mine["won"], mine["decided"]),
                "avg_sop_score": rate(figures_of["sop_sum"], figures_of["sop_count"]),
            }
        )
    return results


def recovery(scope: Scope) -> dict[str, Any]:
    """Recovery's figures, all call figures (from the daily rollup where it can answer), or
    nulls with the reason when messaging registered none."""
    if _recovery() is None:
        return {**dict.fromkeys(RECOVERY_FIELDS), "unavailable_reason": RECOVERY_PENDING}
    row, _ = scope_figures(scope, median_response=True)
    return {
        "missed_calls": row["missed"],
        "texted": row["texted"],
        "replied": row["replied"],
        "recovered": row["recovered"],
        "recovery_rate": rate(row["recovered"], row["missed"]),
        "median_first_response_seconds": row["median_response"],
        "unavailable_reason": None,
    }


# --- who may see whose figures --------------------------------------------------------------


class NotYours(Exception):
    """The caller may not see these figures: another person's, or no such person here."""


def check_person(
    company: Company, *, user: User, role: str, rep: int | None, csr: int | None
) -> tuple[User | None, str]:
    """Whose figures the caller gets: a manager the tenant's, or the ``rep``'s or ``csr``'s
    they name (an active member of this company in that role); anyone else their own."""
    asked, asked_role = (rep, Role.SALES_REP) if rep is not None else (csr, Role.CSR)
    if role != Role.MANAGER:
        if asked is not None and (asked != user.pk or asked_role != role):
            raise NotYours
        return user, role
    if asked is None:
        return None, role
    member = (
        Membership.objects.filter(
            company=company, user_id=asked, role=asked_role, revoked_at__isnull=True
        )
        .select_related("user")
        .first()
    )
    if member is None:
        raise NotYours
    return member.user, asked_role


def people(company: Company, person: User | None) -> list[tuple[User, str]]:
    """The rows of metrics/reps/: the company's active CSRs and sales reps (or one)."""
    members = Membership.objects.filter(
        company=company, role__in=[Role.CSR, Role.SALES_REP], revoked_at__isnull=True
    ).select_related("user")
    if person is not None:
        members = members.filter(user=person)
    return [(m.user, m.role) for m in members.order_by("user__name", "user_id")]
