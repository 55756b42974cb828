"""Transcription: from a ``recorded`` call's stored audio to its redacted :class:`Transcript`.

The stages it owns (docs/operations.md "Stages"):

- ``recorded`` → ``transcribing``: :func:`transcribe_call` claims the call through the
  pipeline's one claim helper (:func:`calls.stages.claim`; lease
  ``PIPELINE_STAGE_DEADLINES["transcribing"]``). Every later write filters on that lease,
  so a worker presumed dead by the reaper (which puts the call back to ``recorded``)
  changes nothing when it wakes up.
- The company's transcriber (:func:`calls.transcribers.transcriber_for`) is submitted the
  call with no transaction open. A finished result is stored at once; a pending job (an
  asynchronous provider) holds the call ``transcribing`` until the job's webhook or the
  poller completes it through :func:`finish_transcription`.
- ``transcribing`` → ``transcribed``: the redacted transcript is stored (one per call) and
  the call handed on through :func:`calls.pipeline.hand_off`, in one transaction, only if
  the claim still holds.
- A transient :class:`ProviderError` puts the call back to ``recorded`` with a backoff on
  ``next_attempt_at``; the reaper enqueues it when that passes. A permanent one, or the
  last of ``PIPELINE_MAX_ATTEMPTS``, ends it ``failed`` with the reason.

**Redaction before storage.** The provider's utterances go through
:func:`calls.redaction.redact_utterances` before anything is stored or handed on; the raw
text lives only in this worker's memory.
"""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from calls import pipeline, stages
from calls.models import Call, Transcript
from calls.providers import PendingJob
from calls.redaction import redact_text, redact_utterances
from calls.speakers import assign_roles
from calls.transcribers import (
    TranscriberNotAvailable,
    TranscriptionResult,
    transcriber_for,
    transcriber_name,
)
from integrations.errors import ProviderError
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

Stage = Call.Stage

__all__ = [
    "TranscriberNotAvailable",
    "finish_transcription",
    "store_result",
    "transcribe_call",
    "transcriber_name",
    "transcript_fields",
]


def transcribe_call(call_id: int, *, queue: Queue = Queue.ASR) -> str | None:
    """Transcribe one ``recorded`` call on ``queue`` (the queue this task runs on); its
    stage afterwards, or None if it was not ours (not ``recorded``, not due, claimed by
    another worker, or handed to the queue its transcriber runs on)."""
    from calls import tasks  # tasks imports this module

    call = Call.objects.select_related("company").filter(pk=call_id).first()
    if call is None or call.stage != Stage.RECORDED:
        return None
    try:
        transcriber = transcriber_for(call.company)
    except TranscriberNotAvailable as exc:
        waiting = stages.due(Stage.RECORDED).filter(pk=call.pk)
        stages.move(waiting, call, Stage.FAILED, reason=str(exc), last_error=str(exc))
        logger.warning("call %s failed: %s", call.pk, exc)
        return Stage.FAILED
    if transcriber.queue != queue:
        enqueue(transcriber.queue, tasks.submit_transcription, call.pk)
        return None
    claim = stages.claim(call, Stage.TRANSCRIBING)
    if claim is None:
        logger.info("call %s is not due for transcription; skipped", call_id)
        return None

    def work() -> str:
        if not call.recording:
            error = "the call has no stored recording"
            raise ProviderError(transcriber.name, error, permanent=True)
        outcome = transcriber.submit(call)
        if isinstance(outcome, PendingJob):
            return _wait_for(claim, outcome)
        return store_result(claim, outcome)

    return stages.attempt(claim, work)


def _wait_for(claim: stages.Claim, job: PendingJob) -> str:
    with transaction.atomic():
        claim.extend(job.wait_until, last_error="")
        job.record()
    logger.info("call %s: %s job %s submitted", claim.call.pk, job.provider, job.external_id)
    return Stage.TRANSCRIBING


def store_result(claim: stages.Claim, result: TranscriptionResult) -> str:
    """Store a finished transcription of a claimed call, or :class:`calls.stages.LeaseLost`
    when the claim no longer holds (nothing is written)."""
    fields = transcript_fields(claim.call, result)
    with transaction.atomic():
        if not finish_transcription(claim.rows(), claim.call, fields):
            raise stages.LeaseLost
    logger.info("call %s transcribed (%s words)", claim.call.pk, fields["word_count"])
    return Stage.TRANSCRIBED


def finish_transcription(rows: QuerySet[Call], call: Call, fields: dict[str, Any]) -> bool:
    """Move the call to ``transcribed``, store its one Transcript and hand it on; False
    (nothing written) when ``rows`` no longer selects the call. Run inside a transaction."""
    if not stages.move(rows, call, Stage.TRANSCRIBED, next_attempt_at=None, last_error=""):
        return False
    # One per call: a re-run (ops retried from transcription) replaces the old one.
    defaults = {"company_id": call.company_id, **fields}
    Transcript.objects.update_or_create(call=call, defaults=defaults)
    pipeline.hand_off(call)
    return True


def transcript_fields(call: Call, result: TranscriptionResult) -> dict[str, Any]:
    """The Transcript's fields from a raw transcription: redacted, then roles assigned."""
    raw = [dataclasses.asdict(u) for u in result.utterances]
    redacted = redact_utterances(raw)
    utterances = [dict(u) for u in redacted.utterances]
    mapping = assign_roles(utterances, direction=call.direction or "")
    roles = {str(speaker): role for speaker, role in mapping.roles.items()}
    for utterance in utterances:
        utterance["role"] = roles.get(str(utterance["speaker"]), "")
    counts = dict(redacted.counts)
    if utterances:
        text = "\n".join(u["text"] for u in utterances)
    else:
        # No speech split into utterances: the whole transcript, redacted all the same.
        whole = redact_text(result.text)
        text = whole.text
        for kind, count in whole.counts.items():
            counts[kind] = counts.get(kind, 0) + count
    duration = result.duration
    return {
        "text": text,
        "utterances": utterances,
        "language": (result.language or "")[:16],
        "duration_seconds": duration,
        "word_count": len(text.split()),
        "provider": result.provider[:16],
        "request_id": result.request_id[:100],
        "model": (result.model or "")[:100],
        "audio_minutes_billed": (
            Decimal(str(round(duration / 60, 4))) if duration is not None else None
        ),
        "roles": roles,
        "roles_confidence": mapping.confidence,
        "roles_method": (mapping.method or "")[:200],
        "roles_corrected_by": None,
        "roles_corrected_at": None,
        "redaction_counts": {kind: n for kind, n in counts.items() if n},
        "redaction_spans": list(redacted.spans),
    }
