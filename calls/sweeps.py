"""The schedules' work: finding calls that were lost on the way.

- ``retry-due-calls`` (every minute): Redis delivers a task at most once and a worker may
  die mid-ingest, so PostgreSQL is swept for ``received`` calls that are due again.
- ``reconcile-callrail`` (every 15 minutes): CallRail never resends a webhook, so its API
  is polled for calls that no webhook brought in.
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from calls.models import Call
from calls.services import upsert_call
from integrations.callrail.client import CallRailClient
from otto.models import Company
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

# CallRail's post-call webhook fires once the recording is attached, up to 20 minutes after
# hang-up. A call listed sooner may not have its recording yet, so reconciliation and
# backfill leave calls younger than this to their webhook.
SETTLE = datetime.timedelta(minutes=30)
RECONCILE_WINDOW = datetime.timedelta(hours=6)
# A call whose task the broker lost (never claimed) is enqueued again after this long.
RECEIVED_GRACE = datetime.timedelta(minutes=5)
RETRY_BATCH = 500

Stage = Call.Stage


def retry_due_calls(now: datetime.datetime | None = None) -> dict[str, int]:
    """Enqueue ``received`` calls that are due: their backoff is over, their lease expired
    (the worker died), or their first task was lost (never claimed after a grace period).
    A call whose lease expired on its last attempt is ``failed``. Safe on several clusters:
    enqueuing twice is harmless, the task claims the call first."""
    from calls import tasks

    now = now or timezone.now()
    max_attempts = settings.PIPELINE_MAX_ATTEMPTS
    received = Call.objects.filter(stage=Stage.RECEIVED)
    gave_up = received.filter(next_attempt_at__lte=now, attempts__gte=max_attempts).update(
        stage=Stage.FAILED,
        stage_reason=f"gave up after {max_attempts} attempts",
        stage_changed_at=now,
        next_attempt_at=None,
        last_error=f"gave up after {max_attempts} attempts: its worker stopped every time",
    )
    due = received.filter(
        Q(next_attempt_at__lte=now)
        | Q(next_attempt_at__isnull=True, stage_changed_at__lt=now - RECEIVED_GRACE)
    ).order_by(F("next_attempt_at").asc(nulls_first=True))
    ids = list(due.values_list("pk", flat=True)[:RETRY_BATCH])
    for call_id in ids:
        enqueue(Queue.DEFAULT, tasks.ingest_call, call_id)
    return {"failed": gave_up, "enqueued": len(ids)}


def reconcile_callrail() -> list[int]:
    """Fan out one reconciliation task per active tenant with CallRail configured; each
    runs on its own, so one tenant's failing API cannot hold up the others."""
    from calls import tasks

    companies = Company.objects.filter(is_active=True).exclude(callrail_company_ids=[])
    ids = list(companies.order_by("pk").values_list("pk", flat=True))
    for company_id in ids:
        enqueue(Queue.DEFAULT, tasks.reconcile_company_calls, company_id)
    return ids


def reconcile_company(company: Company, now: datetime.datetime | None = None) -> dict[str, int]:
    """Ingest the company's calls of the last 6 hours that no webhook brought in.

    CallRail never resends a webhook, so a lost delivery is found here. Calls younger than
    :data:`SETTLE` are left to their webhook (their recording may not be attached yet).
    Only ``COM…`` company ids can filter CallRail's list.
    """
    from calls import tasks

    now = now or timezone.now()
    counts = {"new": 0, "known": 0}
    client = CallRailClient.for_company(company)
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
    ids = [str(value) for value in company.callrail_company_ids or []]
    usable = [value for value in ids if value.startswith("COM")]
    if ids and not usable:
        logger.warning(
            "company %s has only legacy numeric CallRail company ids; add its COM… id to "
            "list its calls",
            company.pk,
        )
    return usable
