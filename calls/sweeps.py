"""The schedules' work: finding calls that were lost on the way.

- ``retry-due-calls`` (every minute), the pipeline reaper: Redis delivers a task at most
  once and a worker may die mid-task, so PostgreSQL is swept for calls that wait and are due
  again (``received``, ``recorded``) and calls held in an in-progress stage (``ingesting``,
  ``transcribing``) past their lease.
- ``reconcile-callrail`` (every 15 minutes): CallRail never resends a webhook, so its API
  is polled for calls that no webhook brought in.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from calls import stages
from calls.models import Call
from calls.services import upsert_call
from otto import selectors as core_selectors
from otto.models import Company
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

# CallRail's post-call webhook fires once the recording is attached, up to 20 minutes after
# hang-up. A call listed sooner may not have its recording yet, so reconciliation and
# backfill leave calls younger than this to their webhook.
SETTLE = datetime.timedelta(minutes=30)
RECONCILE_WINDOW = datetime.timedelta(hours=6)
# A call whose task the broker lost (never claimed) is enqueued again after this long: its
# push succeeded, so the task may still be waiting in a backlog. A call whose push failed
# (broker down) is made due at once instead (mark_unqueued) and is enqueued on the next run.
RECEIVED_GRACE = datetime.timedelta(minutes=5)
RETRY_BATCH = 500

Stage = Call.Stage
# The stages a call waits in for its next task, each with that task (see _task_for).
# Apps above calls add theirs with register_waiting (e.g. analysis: ``transcribed``).
WAITING: list[str] = [Stage.RECEIVED, Stage.RECORDED]
_WAITING_TASKS: dict[str, tuple[Queue, Callable[[int], None]]] = {}
# The in-progress stages a worker holds a call in, each with the stage it waits in before.
IN_PROGRESS = stages.IN_PROGRESS


def retry_due_calls(now: datetime.datetime | None = None) -> dict[str, int]:
    """The pipeline reaper: enqueue every call that waits and is due, and take back every
    call stuck in an in-progress stage past its deadline.

    - Waiting stages (:data:`WAITING`): a call whose backoff is over or whose lease expired
      (its worker died), whose push failed (made due by :func:`mark_unqueued`), or whose
      first task was lost (never claimed after a grace period), is enqueued for its
      stage's task on its stage's queue.
    - In-progress stages (:data:`IN_PROGRESS`): a call whose lease has run out (its claim
      plus ``PIPELINE_STAGE_DEADLINES``, or as long as a provider job it waits for may
      take) is put back to the stage it waits in (compare-and-set on its lease, so a
      worker still alive loses its claim and writes nothing) and enqueued.
    - A call that is due again after its last allowed attempt is ``failed``.

    Safe on several clusters: moves are compare-and-sets and enqueuing twice is harmless,
    because every task claims its call first. ``WebhookEvent``s stuck in ``received`` are
    the inbox's own reaper's (``reap-webhook-events``).
    """
    now = now or timezone.now()
    counts = {"failed": 0, "enqueued": 0, "reclaimed": 0}
    for stage, waiting in IN_PROGRESS.items():
        counts["reclaimed"] += _reclaim(stage, waiting, now)
    for stage in WAITING:
        failed, enqueued = _enqueue_due(stage, now)
        counts["failed"] += failed
        counts["enqueued"] += enqueued
    return counts


def register_waiting(stage: str, queue: Queue, task: Callable[[int], None]) -> None:
    """Make the reaper enqueue ``task`` on ``queue`` for calls waiting in ``stage`` and due
    (an app above ``calls`` registers its stage in its ``ready()``)."""
    stage = Stage(stage)
    _WAITING_TASKS[stage] = (queue, task)
    if stage not in WAITING:
        WAITING.append(stage)


def mark_unqueued(call_id: int) -> None:
    """Make a waiting call whose stage task could not be pushed due now, so the reaper's
    next run enqueues it. A call with a ``next_attempt_at`` is left alone: it is already
    due or backing off, or a worker holds its lease."""
    Call.objects.filter(pk=call_id, stage__in=WAITING, next_attempt_at__isnull=True).update(
        next_attempt_at=timezone.now()
    )


def _task_for(stage: str) -> tuple[Queue, Callable[[int], None]]:
    from calls import tasks

    by_stage: dict[str, tuple[Queue, Callable[[int], None]]] = {
        Stage.RECEIVED: (Queue.DEFAULT, tasks.ingest_call),
        Stage.RECORDED: (Queue.ASR, tasks.transcribe_call),
        **_WAITING_TASKS,
    }
    return by_stage[stage]


def _reclaim(stage: str, waiting: str, now: datetime.datetime) -> int:
    """Put calls held in ``stage`` past their lease back to ``waiting``, due now."""
    expired = Q(next_attempt_at__lte=now) | Q(
        # A hold without a lease is not one a claim made; its deadline still bounds it.
        next_attempt_at__isnull=True,
        stage_changed_at__lt=now - stages.deadline(stage),
    )
    stuck = Call.objects.filter(expired, stage=stage).only(
        "pk", "company_id", "stage", "next_attempt_at", "attempts"
    )
    reclaimed = 0
    for call in stuck.order_by("stage_changed_at")[:RETRY_BATCH]:
        rows = Call.objects.filter(stage=stage, next_attempt_at=call.next_attempt_at)
        reason = f"{stage} passed its deadline (worker presumed dead); attempt {call.attempts}"
        if stages.move(rows, call, waiting, reason=reason, next_attempt_at=now):
            reclaimed += 1
            logger.warning("call %s was stuck %s; put back to %s", call.pk, stage, waiting)
    return reclaimed


def _enqueue_due(stage: str, now: datetime.datetime) -> tuple[int, int]:
    max_attempts = settings.PIPELINE_MAX_ATTEMPTS
    waiting = Call.objects.filter(stage=stage)
    reason = f"gave up after {max_attempts} attempts"
    with transaction.atomic():
        exhausted = waiting.filter(next_attempt_at__lte=now, attempts__gte=max_attempts)
        failed = list(
            exhausted.select_for_update(skip_locked=True).only("pk", "company_id", "stage")[
                :RETRY_BATCH
            ]
        )
        Call.objects.filter(pk__in=[c.pk for c in failed]).update(
            stage=Stage.FAILED,
            stage_reason=reason,
            stage_changed_at=now,
            next_attempt_at=None,
            last_error=f"{reason}: its worker stopped every time",
        )
        stages.record_moves(failed, Stage.FAILED, reason=reason)
    due = waiting.filter(
        Q(next_attempt_at__lte=now)
        | Q(next_attempt_at__isnull=True, stage_changed_at__lt=now - RECEIVED_GRACE)
    ).order_by(F("next_attempt_at").asc(nulls_first=True))
    ids = list(due.values_list("pk", flat=True)[:RETRY_BATCH])
    queue, task = _task_for(stage)
    for call_id in ids:
        enqueue(queue, task, call_id)
    return len(failed), len(ids)


def reconcile_callrail() -> list[int]:
    """Fan out one reconciliation task per active tenant with CallRail company ids and a
    CallRail key of its own; each runs on its own, so one tenant's failing API cannot hold
    up the others. A tenant without a key is skipped, and says so in the log."""
    from calls import tasks

    companies = Company.objects.filter(is_active=True, callrail_companies__isnull=False)
    ids = []
    for company in companies.distinct().order_by("pk"):
        if not core_selectors.has_callrail_key(company):
            _skip(company, "it has no CallRail API key of its own")
            continue
        ids.append(company.pk)
        enqueue(Queue.DEFAULT, tasks.reconcile_company_calls, company.pk)
    return ids


def _skip(company: Company, why: str) -> None:
    logger.warning("CallRail reconciliation skips company %s: %s", company.pk, why)


def reconcile_company(company: Company, now: datetime.datetime | None = None) -> dict[str, int]:
    """Ingest the company's calls of the last 6 hours that no webhook brought in.

    CallRail never resends a webhook, so a lost delivery is found here. Calls younger than
    :data:`SETTLE` are left to their webhook (their recording may not be attached yet).
    Only ``COM…`` company ids can filter CallRail's list. Read with the tenant's own key
    only; an inactive tenant, or one without a key, is skipped.
    """
    from calls import tasks

    now = now or timezone.now()
    counts = {"new": 0, "known": 0}
    if not company.is_active:
        _skip(company, "it is inactive")
        return counts
    if not core_selectors.has_callrail_key(company):
        _skip(company, "it has no CallRail API key of its own")
        return counts
    client = core_selectors.callrail_client(company)
    for callrail_company in callrail_company_ids(company):
        for found in client.iter_calls(
            now - RECONCILE_WINDOW, now - SETTLE, company_id=callrail_company
        ):
            call, created = upsert_call(company, call_id=found.id, started_at=found.start_time)
            counts["new" if created else "known"] += 1
            if created:
                enqueue(Queue.DEFAULT, tasks.ingest_call, call.pk)
    if counts["new"]:
        logger.warning("reconciliation found %s call(s) of company %s", counts["new"], company.pk)
    return counts


def callrail_company_ids(company: Company) -> list[str]:
    """The company's ``COM…`` ids, the form CallRail's ``company_id`` filter takes."""
    ids = core_selectors.callrail_company_ids(company)
    usable = [value for value in ids if value.startswith("COM")]
    if ids and not usable:
        logger.warning(
            "company %s has only legacy numeric CallRail company ids; add its COM… id to "
            "list its calls",
            company.pk,
        )
    return usable
