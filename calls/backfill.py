"""Backfill: bring a tenant's CallRail history in (``manage.py backfill_calls``).

Calls are listed oldest first, one CallRail company at a time, and each is handled in
place: upserted by its ``CAL…`` id (so a call already known, from a webhook or an earlier
run, is counted ``existing`` and left alone) and, for a new call, ingested right here from
the listed data, which spares one API request per call against CallRail's hourly limit.
After each call a :class:`~calls.models.CallBackfill` row records its start time, so an
interrupted run, started again with the same ``--since``/``--until``, resumes there.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.utils import timezone

from calls.models import Call, CallBackfill
from calls.services import ingest_call, store_without_recording, upsert_call
from calls.sweeps import SETTLE, callrail_company_ids
from integrations.callrail import schemas
from integrations.callrail.client import MAX_PER_PAGE
from otto import selectors as core_selectors
from otto.models import Company

Stage = Call.Stage

NEW, EXISTING, FAILED, RETRYING = "new", "existing", "failed", "retrying"
NO_RECORDINGS_REASON = "backfilled without its recording (--no-recordings)"
PAGE_SIZE = MAX_PER_PAGE

Progress = Callable[[Counter], None]


class BackfillRefused(Exception):
    """The tenant cannot be backfilled: inactive, or without a CallRail key of its own."""


def check_backfill(company: Company) -> None:
    """A backfill reads with the tenant's own CallRail key, never the deployment's, and
    never for an inactive tenant."""
    if not company.is_active:
        raise BackfillRefused(f"company {company.slug} is inactive")
    if not core_selectors.has_callrail_key(company):
        raise BackfillRefused(
            f"company {company.slug} has no CallRail API key of its own; set it first"
        )


def backfill_calls(
    company: Company,
    *,
    since: datetime.date,
    until: datetime.date,
    dry_run: bool = False,
    recordings: bool = True,
    counts: Counter | None = None,
    progress: Progress | None = None,
) -> Counter:
    """Ingest the company's calls from ``since`` to ``until`` (its own time zone, both
    days included); the counts of new, existing, failed and retrying (transient failure,
    left to ``retry-due-calls``) calls. ``dry_run`` lists and counts, and writes nothing.

    Calls younger than :data:`calls.sweeps.SETTLE` are left to their webhook, which
    comes once the recording is attached. Raises what stops it (a ProviderError, or
    KeyboardInterrupt); the checkpoint, and ``counts`` when given, keep the progress so far.
    A tenant :func:`check_backfill` refuses raises :class:`BackfillRefused` before any read.
    """
    check_backfill(company)
    zone = ZoneInfo(company.timezone)
    start = datetime.datetime.combine(since, datetime.time.min, zone)
    end = min(datetime.datetime.combine(until, datetime.time.max, zone), timezone.now() - SETTLE)
    counts = Counter() if counts is None else counts
    client = core_selectors.callrail_client(company)
    for callrail_company in callrail_company_ids(company):
        checkpoint = None if dry_run else _checkpoint(company, callrail_company, since, until)
        resume_from = checkpoint.cursor if checkpoint and checkpoint.cursor else start
        calls = client.iter_calls(
            resume_from, end, company_id=callrail_company, per_page=PAGE_SIZE, order="asc"
        )
        for found in calls:
            counts[_backfill_one(company, found, dry_run=dry_run, recordings=recordings)] += 1
            if checkpoint is not None and found.start_time is not None:
                checkpoint.cursor = found.start_time
                checkpoint.save(update_fields=["cursor", "updated_at"])
            if progress is not None:
                progress(counts)
        if checkpoint is not None:
            checkpoint.finished_at = timezone.now()
            checkpoint.save(update_fields=["finished_at", "updated_at"])
    return counts


def _checkpoint(
    company: Company, callrail_company: str, since: datetime.date, until: datetime.date
) -> CallBackfill:
    checkpoint, _ = CallBackfill.objects.get_or_create(
        company=company, callrail_company_id=callrail_company, since=since, until=until
    )
    if checkpoint.finished_at is not None:
        # The range was done before: this is a new pass over it, from the start.
        checkpoint.cursor = checkpoint.finished_at = None
        checkpoint.save(update_fields=["cursor", "finished_at", "updated_at"])
    return checkpoint


def _backfill_one(company: Company, found: schemas.Call, *, dry_run: bool, recordings: bool):
    if dry_run:
        known = Call.objects.filter(
            company=company, source=Call.Source.CALLRAIL, external_id=found.id
        ).exists()
        return EXISTING if known else NEW
    call, created = upsert_call(company, call_id=found.id, started_at=found.start_time)
    if not created:
        return EXISTING
    if not recordings:
        store_without_recording(call, found, NO_RECORDINGS_REASON)
        return NEW
    stage = ingest_call(call.pk, listed=found)
    if stage == Stage.FAILED:
        return FAILED
    return RETRYING if stage == Stage.RECEIVED else NEW
