"""The ingest stage: ``received → ingesting → recorded`` (or ``skipped``/``failed``).

**Claim.** :func:`ingest_call` claims a ``received`` call through the pipeline's one claim
helper, :func:`calls.stages.claim`: a compare-and-set to ``ingesting`` that bumps
``attempts`` and sets the lease (``PIPELINE_STAGE_DEADLINES["ingesting"]``, longer than a
task may live). Every later write filters on that exact lease: a worker whose call was
taken back (presumed dead by the reaper, or re-run by ops) changes nothing. A transient
error puts the call back to ``received`` with a backoff; a killed worker's call goes back
to ``received`` when the reaper finds its lease expired. No network call runs inside a
transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction

from calls import pipeline, stages
from calls.models import Call
from calls.services import recording
from calls.services.details import apply_callrail_call
from calls.services.recording import StoredRecording
from integrations.callrail import schemas
from otto import selectors as core_selectors
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

Stage = Call.Stage

# Ops' re-run of ingest applies to a call still in (or back from) ingest; a call further
# on only has its details refreshed, unless its recording is to be fetched again.
_REINGESTABLE = (Stage.RECEIVED, Stage.INGESTING, Stage.FAILED, Stage.SKIPPED)


def request_ingest(
    call: Call, *, refetch_recording: bool = False, actor: Any = None, reason: str = ""
) -> bool:
    """Put ``call`` back to be ingested (admin: "re-run ingest", "re-fetch recording").

    A ``received``, ``ingesting``, ``failed`` or ``skipped`` call, or any call with
    ``refetch_recording``, goes back to ``received`` with fresh attempts and is enqueued;
    a worker still holding it loses its lease. Re-fetching keeps the stored recording
    until ingest has the new one in storage (:mod:`calls.services.recording`), then hands
    the call to transcription again. A call further on (``recorded`` and later) keeps its
    stage and recording: its CallRail details are re-fetched (:func:`refresh_call`).
    """
    from calls import tasks  # tasks imports this package

    own = Call.objects.filter(pk=call.pk, company=call.company_id, stage=call.stage)
    if not refetch_recording and call.stage not in _REINGESTABLE:
        enqueue(Queue.DEFAULT, tasks.refresh_call, call.pk)
        return True
    changes: dict[str, Any] = {"attempts": 0, "next_attempt_at": None, "last_error": ""}
    reason = reason or ("recording re-fetch requested" if refetch_recording else "re-ingest")
    if stages.move(own, call, Stage.RECEIVED, reason=reason, actor=actor, **changes):
        enqueue(Queue.DEFAULT, tasks.ingest_call, call.pk)
        return True
    return False


def ingest_call(call_id: int, *, listed: schemas.Call | None = None) -> str | None:
    """Ingest one ``received`` call; its stage afterwards, or None if it was not ours.

    Fetches the call from CallRail (the webhook is a trigger, not the truth) unless
    ``listed`` already holds the API's answer (backfill), applies it, finds or creates the
    contact, streams the recording into storage and hands the call to transcription.
    Idempotent: a call that is not ``received`` and due (another worker holds it, or it
    waits out a backoff) is left alone.
    """
    call = Call.objects.select_related("company").filter(pk=call_id).first()
    claim = stages.claim(call, Stage.INGESTING) if call and call.stage == Stage.RECEIVED else None
    if claim is None:
        logger.info("call %s is not due for ingest; skipped", call_id)
        return None
    return stages.attempt(claim, lambda: _ingest(claim, listed))


def _ingest(claim: stages.Claim, listed: schemas.Call | None) -> str | None:
    call = claim.call
    client = core_selectors.callrail_client(call.company)
    found = listed or client.get_call(call.external_id)
    if found.id != call.external_id:
        renamed = take_canonical_id(claim, found.id)
        if renamed is None:
            return None
        call = renamed
    previous = call.recording.name or ""
    call = apply_callrail_call(call, found, claim=claim)
    reason = recording.nothing_to_record(found)
    if reason:
        return _finish(claim, Stage.SKIPPED, reason=reason)
    stored = recording.store_recording(call, client)
    if stored is None:
        reason = "CallRail has no recording for this call any more (HTTP 404)"
        return _finish(claim, Stage.SKIPPED, reason=reason)
    return finish_recorded(claim, stored, previous=previous)


def finish_recorded(claim: stages.Claim, stored: StoredRecording, *, previous: str) -> str:
    """Point the claimed call at its newly stored recording and hand it to transcription;
    the file it replaces is deleted after that commits. A worker that lost its claim
    deletes the file it stored instead (:class:`calls.stages.LeaseLost`), and the call
    keeps playing ``previous``."""
    try:
        return _finish(claim, Stage.RECORDED, stored=stored, previous=previous)
    except stages.LeaseLost:
        recording.discard(previous, stored)
        raise


def refresh_call(call_id: int) -> None:
    """Re-fetch a call ingest is done with and apply what changed (note, tags, lead
    status…); its stage, recording and transcription are left as they are."""
    from calls import tasks  # tasks imports this package

    call = Call.objects.select_related("company").filter(pk=call_id).first()
    if call is None or call.stage in (Stage.RECEIVED, Stage.INGESTING):
        return  # gone, or ingest will fetch it anyway
    found = core_selectors.callrail_client(call.company).get_call(call.external_id)
    apply_callrail_call(call, found)
    # The name and tags are searchable: index again (a no-op until transcribed is fine).
    enqueue(Queue.INDEXING, tasks.index_call, call.pk)


def store_without_recording(call: Call, found: schemas.Call, reason: str) -> None:
    """Apply CallRail's view of a new call and end it ``skipped`` without downloading its
    audio (``backfill_calls --no-recordings``); "re-fetch recording" brings it in later."""
    with transaction.atomic():
        apply_callrail_call(call, found)
        stages.move(Call.objects.filter(stage=Stage.RECEIVED), call, Stage.SKIPPED, reason=reason)


def take_canonical_id(claim: stages.Claim, canonical: str) -> Call | None:
    """Rename a provisional (numeric-id) row to its ``CAL…`` id, or merge it into the row
    that already has it. Returns the row to go on with, or None when merged away."""
    from calls import tasks  # tasks imports this package

    call = claim.call
    with transaction.atomic():
        row = claim.rows().select_for_update().first()
        if row is None:
            raise stages.LeaseLost
        try:
            with transaction.atomic():
                Call.objects.filter(pk=row.pk).update(external_id=canonical)
            call.external_id = canonical
            return call
        except IntegrityError:
            pass
        existing = Call.objects.get(
            company=row.company_id, source=row.source, external_id=canonical
        )
        existing.webhook_events.add(*row.webhook_events.all())
        if not existing.legacy_id:
            Call.objects.filter(pk=existing.pk).update(legacy_id=row.legacy_id)
        row.delete()
        logger.info("call %s (%s) merged into call %s", call.pk, call.external_id, existing.pk)
        if existing.stage == Stage.RECEIVED:
            enqueue(Queue.DEFAULT, tasks.ingest_call, existing.pk)
    return None


def _finish(
    claim: stages.Claim,
    stage: str,
    *,
    reason: str = "",
    stored: StoredRecording | None = None,
    previous: str = "",
) -> str:
    call = claim.call
    changes: dict[str, Any] = {"next_attempt_at": None, "last_error": ""}
    if stored is not None:
        changes |= stored.fields()
    with transaction.atomic():
        if not stages.move(claim.rows(), call, stage, reason=reason, **changes):
            raise stages.LeaseLost
        if stored is not None:
            recording.replace_after_commit(previous, stored)
        if stage == Stage.RECORDED:
            # Exactly once: only the compare-and-set that moved the call gets here.
            pipeline.start_transcription(call)
        # Also once per ingest: a missed call (a voicemail too) starts its recovery.
        pipeline.missed_call(call)
        # And an answered one ends the contact's recovery at once.
        pipeline.answered_call(call)
    logger.info("call %s ingested: %s %s", call.pk, stage, reason)
    return stage
