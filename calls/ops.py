"""Reads for the admin's pipeline page (calls.admin_pipeline): what ops look at first.

Across tenants, like the rest of the admin. Every figure is one aggregate query
(``GROUP BY`` in PostgreSQL, hours and days truncated by the database), so the page costs
the same handful of queries at a thousand calls as at a million, and each filter has an
index behind it (calls.models' Meta, and migration 0010 for django-q's failures):

- calls per stage: ``calls_company_stage_idx`` (an index-only count);
- failures: ``calls_failed_since_idx``, a partial index over failed calls only;
- calls per hour: ``calls_created_brin``, a BRIN index (rows arrive in ``created_at`` order);
- webhook → applied: ``calls_stagechange_applied_idx``, partial, moves to ``applied`` only;
- django-q's failed tasks: ``calls_q_failure_stopped_idx`` on ``django_q_task``;
- the inbox: ``intg_webhook_status_idx``.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from django.db import connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Min, QuerySet
from django.db.models.functions import Extract, Left, TruncDate, TruncHour
from django.utils import timezone

from calls.models import Call, CallStageChange
from integrations.models import WebhookEvent
from otto.queues import task_call_id
from otto.sql import Median

FAILURE_WINDOW = datetime.timedelta(hours=24)
CHART_DAYS = 7
# Failures are grouped by the first this many characters of their error.
ERROR_KEY_LENGTH = 200
# Groups, failed tasks and inbox events listed at most (the counts cover all of them).
LIST_LIMIT = 25

Stage = Call.Stage
INBOX_PROBLEMS = (WebhookEvent.Status.UNMATCHED, WebhookEvent.Status.FAILED)


def stage_counts() -> dict[str, int]:
    """Calls in each stage now, every stage listed (0 included), across all tenants."""
    rows = Call.objects.order_by().values("stage").annotate(n=Count("id"))
    counts = {row["stage"]: row["n"] for row in rows}
    return {stage.value: counts.get(stage.value, 0) for stage in Stage}


# --- failures ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FailureGroup:
    """Calls that failed since the window's start with the same error (its first
    :data:`ERROR_KEY_LENGTH` characters) and are failed still."""

    error: str
    count: int
    first_at: datetime.datetime
    last_at: datetime.datetime


def failed_calls(since: datetime.datetime) -> QuerySet[Call]:
    return Call.objects.filter(stage=Stage.FAILED, stage_changed_at__gte=since)


def failure_groups(since: datetime.datetime) -> list[FailureGroup]:
    """The failed calls of the window, by error, the largest group first."""
    rows = (
        failed_calls(since)
        .annotate(error=Left("last_error", ERROR_KEY_LENGTH))
        .order_by()
        .values("error")
        .annotate(n=Count("id"), first_at=Min("stage_changed_at"), last_at=Max("stage_changed_at"))
        .order_by("-n", "error")[:LIST_LIMIT]
    )
    return [
        FailureGroup(row["error"] or "", row["n"], row["first_at"], row["last_at"]) for row in rows
    ]


def group_lookup(error: str) -> dict[str, str]:
    """The filter on ``last_error`` that selects one group's calls (also as the admin
    changelist's query parameters): an exact match, or a prefix for a cut-off error."""
    if len(error) >= ERROR_KEY_LENGTH:
        return {"last_error__startswith": error}
    return {"last_error": error}


def failure_group_calls(error: str, since: datetime.datetime) -> QuerySet[Call]:
    return failed_calls(since).filter(**group_lookup(error))


@dataclasses.dataclass(frozen=True)
class TaskFailures:
    """django-q's failed tasks of the window: per task function, and the latest ones."""

    by_func: list[dict[str, Any]]
    latest: list[dict[str, Any]]


def task_failures(since: datetime.datetime) -> TaskFailures:
    from django_q.models import Failure

    failures = Failure.objects.filter(stopped__gte=since)
    by_func = list(
        failures.order_by()
        .values("func")
        .annotate(n=Count("id"), last_at=Max("stopped"))
        .order_by("-n", "func")[:LIST_LIMIT]
    )
    latest = [
        {
            "id": task.id,
            "name": task.name,
            "func": task.func,
            "stopped": task.stopped,
            "result": str(task.result or "")[:300],
            "call_id": task_call_id(task.name),
        }
        for task in failures.only("id", "name", "func", "stopped", "result").order_by("-stopped")[
            :LIST_LIMIT
        ]
    ]
    return TaskFailures(by_func, latest)


# --- charts --------------------------------------------------------------------------------


def hour_start(moment: datetime.datetime) -> datetime.datetime:
    return moment.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)


def calls_per_hour(now: datetime.datetime | None = None) -> list[tuple[datetime.datetime, int]]:
    """Calls received (stored by Otto) in each UTC hour of the last seven days, oldest
    first, the current hour last; every hour listed, 0 included."""
    current = hour_start(now or timezone.now())
    first = current - datetime.timedelta(hours=CHART_DAYS * 24 - 1)
    rows = (
        Call.objects.filter(created_at__gte=first)
        .annotate(hour=TruncHour("created_at", tzinfo=datetime.UTC))
        .order_by()
        .values("hour")
        .annotate(n=Count("id"))
    )
    counts = {row["hour"]: row["n"] for row in rows}
    hours = (first + datetime.timedelta(hours=i) for i in range(CHART_DAYS * 24))
    return [(hour, counts.get(hour, 0)) for hour in hours]


def median_seconds_to_applied(
    now: datetime.datetime | None = None,
) -> list[tuple[datetime.date, float | None, int]] | None:
    """Per UTC day of the last seven, today last: the median seconds from a call's first
    webhook (the row's ``created_at``) to its move to ``applied``, and how many moves.
    None where the database has no median (the SQLite default)."""
    if connection.vendor != "postgresql":
        return None
    today = (now or timezone.now()).astimezone(datetime.UTC).date()
    first = today - datetime.timedelta(days=CHART_DAYS - 1)
    waited = ExpressionWrapper(
        F("created_at") - F("call__created_at"), output_field=DurationField()
    )
    rows = (
        CallStageChange.objects.filter(
            to_stage=Stage.APPLIED,
            created_at__gte=datetime.datetime.combine(first, datetime.time(), datetime.UTC),
        )
        .annotate(day=TruncDate("created_at", tzinfo=datetime.UTC))
        .order_by()
        .values("day")
        .annotate(median=Median(Extract(waited, "epoch")), n=Count("id"))
    )
    by_day = {row["day"]: (row["median"], row["n"]) for row in rows}
    days = (first + datetime.timedelta(days=i) for i in range(CHART_DAYS))
    return [(day, *by_day.get(day, (None, 0))) for day in days]


# --- the webhook inbox ---------------------------------------------------------------------


def inbox_problem_counts() -> dict[str, int]:
    rows = (
        WebhookEvent.objects.filter(status__in=INBOX_PROBLEMS)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
    )
    counts = {row["status"]: row["n"] for row in rows}
    return {status.value: counts.get(status.value, 0) for status in INBOX_PROBLEMS}


def inbox_problems() -> list[WebhookEvent]:
    """The latest unmatched and failed deliveries, newest first (bodies left unloaded)."""
    return list(
        WebhookEvent.objects.filter(status__in=INBOX_PROBLEMS)
        .select_related("company")
        .defer("body", "headers")
        .order_by("-received_at")[:LIST_LIMIT]
    )
