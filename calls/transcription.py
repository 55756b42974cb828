"""Transcription: from a ``recorded`` call's stored audio to its redacted :class:`Transcript`.

The stages it owns (docs/operations.md "Stages"), on queue ``asr``:

- ``recorded`` → ``transcribing``: :func:`transcribe_call` claims the call with one
  compare-and-set that bumps ``attempts`` and sets ``next_attempt_at`` to the claim's
  *lease* (now + the stage deadline, ``PIPELINE_STAGE_DEADLINES["transcribing"]``). Every
  later write filters on that exact lease, so a worker presumed dead by the reaper (which
  puts the call back to ``recorded``) changes nothing when it wakes up.
- The provider is called with no transaction open.
- ``transcribing`` → ``transcribed``: the redacted transcript is stored (one per call) and
  the call handed to analysis through :func:`calls.pipeline.start_analysis`, in one
  transaction, only if the lease still holds.
- A transient :class:`ProviderError` puts the call back to ``recorded`` with a backoff on
  ``next_attempt_at``; the reaper enqueues it when that passes. A permanent one, or the
  last of ``PIPELINE_MAX_ATTEMPTS``, ends it ``failed`` with the reason.

**Transcriber per company.** ``Company.transcriber`` (blank: settings ``TRANSCRIBER``)
picks the transcriber. Deepgram is synchronous and runs here. Shunya is asynchronous (a job,
then a webhook or a poll): this task hands a Shunya tenant's call to queue ``uwc``, where
:func:`calls.shunya.submit_transcription` claims it the same way and submits its job.

**Redaction before storage.** The provider's utterances go through
:func:`calls.redaction.redact_utterances` before anything is stored or handed on; the raw
text lives only in this worker's memory.
"""

from __future__ import annotations

import datetime
import logging
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from calls import pipeline, recordings, stages
from calls.models import Call, Transcript
from integrations.deepgram.client import DeepgramTranscriber
from integrations.deepgram.schemas import Transcription
from integrations.errors import ProviderError
from otto.models import Company
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

Stage = Call.Stage

# Audio larger than this is sent to the provider as a presigned URL when the storage can
# make one (S3); smaller audio, or any audio on local storage, is sent as bytes.
URL_THRESHOLD_BYTES = 20 * 1024 * 1024


class TranscriberNotAvailable(Exception):
    """The company names no transcriber Otto knows; the call is failed with this reason."""


class Transcriber(Protocol):
    """Turns a call's stored audio into a transcription (raw: redaction comes after)."""

    name: str

    def transcribe(self, call: Call) -> Transcription: ...


class DeepgramCallTranscriber:
    """Deepgram pre-recorded (nova-3, diarize, utterances, punctuate, smart_format)."""

    name = "deepgram"

    def transcribe(self, call: Call) -> Transcription:
        client = DeepgramTranscriber.from_settings()
        url = _presigned_url(call)
        if url is not None:
            return client.transcribe_url(url)
        with call.recording.open("rb") as audio:
            return client.transcribe_bytes(audio.read())


def transcriber_name(company: Company) -> str:
    return company.transcriber or settings.TRANSCRIBER


def transcriber_for(company: Company) -> Transcriber:
    """The synchronous transcriber of ``company`` (Shunya's jobs go through calls.shunya)."""
    name = transcriber_name(company)
    if name == "deepgram":
        return DeepgramCallTranscriber()
    raise TranscriberNotAvailable(f"unknown transcriber {name!r}")


def _presigned_url(call: Call) -> str | None:
    storage = call.recording.storage
    if (call.recording_size or 0) <= URL_THRESHOLD_BYTES:
        return None
    if not getattr(storage, "querystring_auth", False):
        return None
    return recordings.recording_url(call)


# --- the task's service -----------------------------------------------------------------


def transcribe_call(call_id: int) -> str | None:
    """Transcribe one ``recorded`` call; its stage afterwards, or None if it was not ours
    (not ``recorded``, not due, or claimed by another worker)."""
    call = Call.objects.select_related("company").filter(pk=call_id).first()
    if call is None or call.stage != Stage.RECORDED:
        return None
    if transcriber_name(call.company) == "shunya":
        # Asynchronous: submitted on queue uwc, which claims the call itself.
        from calls import tasks

        enqueue(Queue.UWC, tasks.submit_shunya_transcription, call.pk)
        return None
    try:
        transcriber = transcriber_for(call.company)
    except TranscriberNotAvailable as exc:
        stages.move(_waiting(call), call, Stage.FAILED, reason=str(exc), last_error=str(exc))
        logger.warning("call %s failed: %s", call.pk, exc)
        return Stage.FAILED
    claim = _claim(call)
    if claim is None:
        logger.info("call %s is not due for transcription; skipped", call_id)
        return None
    call, lease = claim

    def work() -> str:
        if not call.recording:
            error = "the call has no stored recording"
            raise ProviderError(transcriber.name, error, permanent=True)
        return _store(call, lease, transcriber.name, transcriber.transcribe(call))

    return stages.attempt(_leased(call, lease), call, work, back_to=Stage.RECORDED)


def _waiting(call: Call):
    """A ``recorded`` call that is due (its backoff, if any, is over)."""
    return Call.objects.filter(pk=call.pk, stage=Stage.RECORDED).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now())
    )


def _claim(call: Call) -> tuple[Call, datetime.datetime] | None:
    lease = timezone.now() + stages.deadline(Stage.TRANSCRIBING)
    rows = _waiting(call).filter(attempts__lt=settings.PIPELINE_MAX_ATTEMPTS)
    bump = {"attempts": F("attempts") + 1, "next_attempt_at": lease}
    if not stages.move(rows, call, Stage.TRANSCRIBING, **bump):
        return None
    call.refresh_from_db(fields=["attempts", "next_attempt_at"])
    return call, lease


def _leased(call: Call, lease: datetime.datetime):
    return Call.objects.filter(pk=call.pk, stage=Stage.TRANSCRIBING, next_attempt_at=lease)


def _store(call: Call, lease: datetime.datetime, provider: str, result: Transcription) -> str:
    fields = transcript_fields(call, provider, result)
    with transaction.atomic():
        if not finish_transcription(_leased(call, lease), call, fields):
            raise stages.LeaseLost
    logger.info("call %s transcribed (%s words)", call.pk, fields["word_count"])
    return Stage.TRANSCRIBED


def finish_transcription(rows, call: Call, fields: dict[str, Any]) -> bool:
    """Move the call to ``transcribed``, store its one Transcript and hand it on; False
    (nothing written) when ``rows`` no longer selects the call. Run inside a transaction."""
    if not stages.move(rows, call, Stage.TRANSCRIBED, next_attempt_at=None, last_error=""):
        return False
    # One per call: a re-run (ops retried from transcription) replaces the old one.
    defaults = {"company_id": call.company_id, **fields}
    Transcript.objects.update_or_create(call=call, defaults=defaults)
    pipeline.start_analysis(call)
    return True


def transcript_fields(call: Call, provider: str, result: Transcription) -> dict[str, Any]:
    """The Transcript's fields from a raw transcription: redacted, then roles assigned."""
    from calls.redaction import redact_text, redact_utterances
    from calls.speakers import assign_roles

    raw = [u.model_dump() for u in result.utterances]
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
        "provider": provider,
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
