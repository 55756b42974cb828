"""The KPIs' daily rollup (docs/kpis.md#the-daily-rollup): per tenant, local day and
person (each handler, each sales rep), the call figures :mod:`analysis.kpis` would count
from the raw tables.

From the raw tables a KPI reads every call of its range with its current analysis: about
40,000 calls over 90 days for the benchmark's largest tenant, 120–350 ms (docs/performance.md).
A 90-day range is at most 90 × people :class:`~analysis.models.KpiDay` rows.

**Always exact, never a cache to distrust.** Every write that can change a day's figures
marks the call's day dirty *in its own transaction* (:func:`mark`, from model signals and
``calls.signals.call_changed``; appointments marks the calls of its appointments and of its
leads' contacts, messaging those of its recoveries). Reading a
range first recomputes the range's dirty days from the raw tables (:func:`fresh_days`), so
a figure never lags a committed change; the pipeline recomputes a call's day as it is
applied, and the ``kpi-rollup`` schedule every minute, so a read rarely has any to do.

Recomputing a day takes the day's advisory lock, deletes its marks, and only then counts
(a new statement, so a new snapshot under READ COMMITTED): a change committed before the
count is in it. A change still open has marked in its own transaction, with a plain insert
the delete cannot see, so its mark outlives the count and the next read or run of the
schedule counts the change once it commits. Marks are never updated and have no unique
key, so a mark never waits for another transaction and marking cannot deadlock the
pipeline (a lead's save marks every call of its contact, which other stages mark too).

A tenant whose rollup is not built, or was built under other settings than the company's
now (its time zone, recovery's window: :func:`basis`), reads the raw tables until the
schedule (or ``manage.py rebuild_kpi_rollup``) rebuilds it; a new company starts built (it
has no calls).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from analysis import kpis
from analysis.models import KpiDay, KpiDirtyDay, KpiRollup
from calls.models import Call
from otto.models import Company, Role

logger = logging.getLogger(__name__)

# KpiDay's counted columns, summed over a range.
COUNTS = (
    "calls",
    "answered",
    "missed",
    "analysed",
    "qualified",
    "booked",
    "service_not_offered",
    "qualified_unbooked",
    "objections",
    "any_objection",
    "sop_sum",
    "sop_count",
    *kpis.RECOVERY_COUNTS,
)


def supported() -> bool:
    """The KPIs are PostgreSQL's (their SQL uses its JSON functions; on the embedded SQLite
    of ``make run`` the endpoints answer 501), and so is their rollup: elsewhere nothing is
    marked, recomputed or built."""
    return connection.vendor == "postgresql"


# --- marking -------------------------------------------------------------------------------


def mark(call_days: Iterable[tuple[int, str, int, datetime.datetime | None]]) -> None:
    """Mark dirty the days of ``(company id, time zone, call id, started_at)``, in the
    caller's transaction: plain inserts (see the module)."""
    if not supported():
        return
    now = timezone.now()
    marks = {
        (company_id, started.astimezone(ZoneInfo(zone)).date(), call_id)
        for company_id, zone, call_id, started in call_days
        if started is not None
    }
    if not marks:
        return
    KpiDirtyDay.objects.bulk_create(
        [KpiDirtyDay(tenant=t, day=d, call=c, marked_at=now) for t, d, c in sorted(marks)]
    )


def mark_calls(calls: QuerySet[Call] | Iterable[int | None]) -> None:
    """Mark the days of these calls (ids, or a queryset of them): one query for their start
    and company time zone."""
    if not isinstance(calls, QuerySet):
        ids = {i for i in calls if i is not None}
        if not ids:
            return
        calls = Call.objects.filter(pk__in=ids)
    mark(calls.values_list("company_id", "company__timezone", "pk", "started_at"))


def mark_call(call: Call, started: Iterable[datetime.datetime | None] = ()) -> None:
    """Mark ``call``'s day, and the days of the other start times it had (``started``)."""
    zone = call.company.timezone
    mark((call.company_id, zone, call.pk, at) for at in (call.started_at, *started))


# The Call fields a day's figures depend on (a save naming none of them changes nothing):
# its day, answer and handler, and its contact (whose lead's rep the call is).
CALL_FIELDS = frozenset(
    {"company", "company_id", "started_at", "answered", "handled_by", "contact", "contact_id"}
)


def call_saved(sender: Any, instance: Call, created: bool, update_fields: Any, **_: Any) -> None:
    if created or update_fields is None or not CALL_FIELDS.isdisjoint(update_fields):
        mark_call(instance)


def call_deleted(sender: Any, instance: Call, **_: Any) -> None:
    mark_call(instance)


def call_changed(sender: Any, call: Call, started: Iterable[datetime.datetime], **_: Any) -> None:
    mark_call(call, started)


def analysis_written(sender: Any, instance: Any, **_: Any) -> None:
    """A call's analysis saved or deleted (a new version, a person's override)."""
    mark_calls([instance.call_id])


def company_saved(sender: Any, instance: Company, created: bool, **_: Any) -> None:
    """A new company has no calls: its (empty) rollup is built, in its time zone."""
    if created:
        KpiRollup.objects.get_or_create(
            company=instance, defaults={"basis": basis(instance), "built_at": timezone.now()}
        )


def connect() -> None:
    """Wire the marks to the writes (analysis' ready(); appointments marks its own)."""
    from django.db.models.signals import post_delete, post_save

    from analysis.models import CallAnalysis
    from calls import signals

    post_save.connect(call_saved, sender=Call, dispatch_uid="kpi-call-saved")
    post_delete.connect(call_deleted, sender=Call, dispatch_uid="kpi-call-deleted")
    signals.call_changed.connect(call_changed, sender=Call, dispatch_uid="kpi-call-changed")
    for name, signal in (("saved", post_save), ("deleted", post_delete)):
        signal.connect(analysis_written, sender=CallAnalysis, dispatch_uid=f"kpi-analysis-{name}")
    post_save.connect(company_saved, sender=Company, dispatch_uid="kpi-company-saved")


# --- recomputing ---------------------------------------------------------------------------


def _figures_by_day(company: Company, calls: QuerySet[Call]) -> list[KpiDay]:
    """The KpiDay rows of ``calls`` (the company's): per local day, one per handler and
    one per sales rep (a call added to each distinct rep of its lead and appointment)."""
    figures = {**kpis.call_figures(company), **kpis.objection_figures()}
    seconds = kpis.response_seconds(company)
    if seconds is not None:
        figures["waits"] = ArrayAgg(seconds, default=[])
    days = kpis.with_current(calls).annotate(
        day=TruncDate("started_at", tzinfo=ZoneInfo(company.timezone))
    )
    totals: dict[tuple[datetime.date, str, int], dict[str, Any]] = {}

    def add(key: tuple[datetime.date, str, int], row: dict[str, Any]) -> None:
        mine = totals.setdefault(key, {"waits": []})
        for name, value in kpis.figures_of(row).items():
            if name in COUNTS or name.startswith("objection_"):
                mine[name] = mine.get(name, 0) + (value or 0)
        mine["waits"] += [w for w in row.get("waits", ()) if w is not None]

    for handled in days.values("day", "handled_by").annotate(**figures).order_by():
        add((handled["day"], KpiDay.Kind.HANDLER, handled["handled_by"] or 0), dict(handled))
    for rep, row in kpis.rep_rows(days, figures, "day"):
        add((row["day"], KpiDay.Kind.REP, rep), row)
    now = timezone.now()
    return [
        KpiDay(
            company=company,
            day=day,
            kind=kind,
            person=person,
            computed_at=now,
            objection_calls={
                c: mine[f"objection_{c}"] for c in kpis.CATEGORIES if mine[f"objection_{c}"]
            },
            response_seconds=sorted(mine["waits"]),
            **{name: mine.get(name, 0) for name in COUNTS},
        )
        for (day, kind, person), mine in totals.items()
    ]


def _lock(company: Company, day: int, *, shared: bool = False) -> None:
    """An advisory lock until the transaction ends: ``(company, 0)`` is the tenant's (a
    rebuild holds it exclusively, a day's recompute shared), ``(company, ordinal)`` a
    day's. SQLite writes one transaction at a time anyway."""
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s, %s)", [company.pk, day])


def refresh_day(company: Company, day: datetime.date) -> None:
    """Recompute one local day of ``company`` from the raw tables (idempotent)."""
    with transaction.atomic():
        _lock(company, 0, shared=True)
        _lock(company, day.toordinal())
        KpiDirtyDay.objects.filter(tenant=company.pk, day=day).delete()
        scope = kpis.Scope(company, day, day)
        start, end = scope.bounds
        calls = Call.objects.filter(company=company, started_at__gte=start, started_at__lt=end)
        rows = _figures_by_day(company, calls)
        KpiDay.objects.filter(company=company, day=day).delete()
        KpiDay.objects.bulk_create(rows)


def rebuild(company: Company) -> int:
    """Rebuild every day of ``company`` under its settings now (:func:`basis`); the rows
    written. Concurrent changes leave marks after the rebuild's delete, recomputed at the
    next read."""
    with transaction.atomic():
        _lock(company, 0)
        KpiDirtyDay.objects.filter(tenant=company.pk).delete()
        rows = _figures_by_day(company, Call.objects.filter(company=company))
        KpiDay.objects.filter(company=company).delete()
        KpiDay.objects.bulk_create(rows, batch_size=2000)
        KpiRollup.objects.update_or_create(
            company=company, defaults={"basis": basis(company), "built_at": timezone.now()}
        )
    return len(rows)


def refresh_call(call: Call) -> None:
    """Recompute ``call``'s day now (the apply stage, once its outcomes are committed). A
    failure is logged and leaves the day's marks to the next read or the schedule."""
    company = call.company
    if not supported() or call.started_at is None or not is_built(company):
        return
    try:
        refresh_day(company, call.started_at.astimezone(ZoneInfo(company.timezone)).date())
    except DatabaseError:
        logger.warning("call %s: its KPI day was not recomputed", call.pk, exc_info=True)


def flush(
    company: Company,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
) -> int:
    """Recompute ``company``'s dirty days (within the range, when given); how many."""
    dirty = KpiDirtyDay.objects.filter(tenant=company.pk)
    if date_from is not None and date_to is not None:
        dirty = dirty.filter(day__gte=date_from, day__lte=date_to)
    days = sorted(set(dirty.values_list("day", flat=True)))
    for day in days:
        refresh_day(company, day)
    return len(days)


def basis(company: Company) -> dict[str, Any]:
    """The company settings the day rows are computed under: its time zone, and what the
    registered figures read (recovery's window)."""
    return {name: getattr(company, name) for name in ("timezone", *kpis.figure_settings())}


def is_built(company: Company) -> bool:
    """Whether ``company``'s rollup is built under its settings as they are now."""
    built = KpiRollup.objects.filter(company=company, built_at__isnull=False)
    return built.values_list("basis", flat=True).first() == basis(company)


def catch_up() -> dict[str, int]:
    """The ``kpi-rollup`` schedule: rebuild the tenants not built under their settings as
    they are now (:func:`basis`), then recompute every dirty day. Idempotent."""
    counts = {"rebuilt": 0, "days": 0}
    if not supported():
        return counts
    built = dict(
        KpiRollup.objects.filter(built_at__isnull=False).values_list("company_id", "basis")
    )
    for company in Company.objects.order_by("pk"):
        if built.get(company.pk) != basis(company):
            rebuild(company)
            counts["rebuilt"] += 1
    tenants = set(KpiDirtyDay.objects.values_list("tenant", flat=True).distinct())
    companies = Company.objects.in_bulk(tenants)
    for tenant in sorted(tenants):
        if tenant in companies:
            counts["days"] += flush(companies[tenant])
        else:  # the company is gone, and its marks with it
            KpiDirtyDay.objects.filter(tenant=tenant).delete()
    return counts


# --- reading -------------------------------------------------------------------------------


def range_days(
    company: Company, date_from: datetime.date, date_to: datetime.date
) -> QuerySet[KpiDay] | None:
    """The company's KpiDay rows of the range, every kind, its dirty days recomputed
    first; None when its rollup is not built under its settings now."""
    if not is_built(company):
        return None
    flush(company, date_from, date_to)
    return KpiDay.objects.filter(company=company, day__gte=date_from, day__lte=date_to)


def fresh_days(scope: kpis.Scope) -> QuerySet[KpiDay] | None:
    """The scope's KpiDay rows (:func:`range_days`): the tenant's handler rows, a CSR's
    own, or a sales rep's rep rows."""
    days = range_days(scope.company, scope.date_from, scope.date_to)
    if days is None:
        return None
    if scope.person is None:
        return days.filter(kind=KpiDay.Kind.HANDLER)
    kind = KpiDay.Kind.REP if scope.role == Role.SALES_REP else KpiDay.Kind.HANDLER
    return days.filter(kind=kind, person=scope.person.pk)


def sums(days: QuerySet[KpiDay]) -> dict[str, Any]:
    """The counted columns summed over ``days`` (zeros when there are none)."""
    row = days.aggregate(**{name: Sum(name) for name in COUNTS})
    return {name: value or 0 for name, value in row.items()}
