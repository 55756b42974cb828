"""Transcribers: the one interface transcription calls, and the result it stores.

``submit(call)`` returns either a :class:`TranscriptionResult` (Deepgram: synchronous) or a
:class:`calls.providers.PendingJob` (Shunya: the job's webhook or the poller completes it,
:mod:`calls.shunya`). Each provider's answer is converted into :class:`TranscriptionResult`
at the edge, in its adapter, so nothing past it knows a provider's schema.

:func:`transcriber_for` is the only place a provider's name means anything: it maps
``Company.transcriber`` (blank: settings ``TRANSCRIBER``) to an implementation. Each
implementation also names the queue its ``submit`` runs on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from calls import recordings
from calls.models import Call
from calls.providers import PendingJob
from integrations.deepgram import schemas as deepgram
from integrations.deepgram.client import DeepgramTranscriber as DeepgramClient
from otto.models import Company
from otto.queues import Queue

# Audio larger than this is sent to the provider as a presigned URL when the storage can
# make one (S3); smaller audio, or any audio on local storage, is sent as bytes.
URL_THRESHOLD_BYTES = 20 * 1024 * 1024

# Name (Company.transcriber, TRANSCRIBER) → implementation, imported when first used so
# this module does not load every provider's adapter.
TRANSCRIBERS = {
    "deepgram": "calls.transcribers.DeepgramTranscriber",
    "shunya": "calls.shunya.ShunyaTranscriber",
}


@dataclass(frozen=True)
class Utterance:
    """One diarised stretch of speech; ``speaker`` is the provider's index, not a role."""

    speaker: int
    start: float
    end: float
    text: str
    confidence: float | None = None


@dataclass(frozen=True)
class TranscriptionResult:
    """A finished transcription, raw: redaction and speaker roles come after."""

    provider: str
    text: str
    utterances: tuple[Utterance, ...]
    duration: float | None = None
    language: str | None = None
    model: str | None = None
    # The provider's id of the request or job, for support tickets.
    request_id: str = ""


class TranscriberNotAvailable(Exception):
    """The company names no transcriber Otto knows; the call is failed with this reason."""


class Transcriber(Protocol):
    name: str
    # The queue ``submit`` runs on (each provider's capacity is scaled on its own).
    queue: Queue

    def submit(self, call: Call) -> TranscriptionResult | PendingJob: ...


def transcriber_name(company: Company) -> str:
    return company.transcriber or settings.TRANSCRIBER


def transcriber_for(company: Company) -> Transcriber:
    """The transcriber of ``company``, or :class:`TranscriberNotAvailable`."""
    name = transcriber_name(company)
    if name not in TRANSCRIBERS:
        raise TranscriberNotAvailable(f"unknown transcriber {name!r}")
    return import_string(TRANSCRIBERS[name])()


class DeepgramTranscriber:
    """Deepgram pre-recorded (nova-3, diarize, utterances, punctuate, smart_format)."""

    name = "deepgram"
    queue = Queue.ASR

    def submit(self, call: Call) -> TranscriptionResult:
        client = DeepgramClient.from_settings()
        url = _presigned_url(call)
        if url is not None:
            return from_deepgram(client.transcribe_url(url))
        with call.recording.open("rb") as audio:
            return from_deepgram(client.transcribe_bytes(audio.read()))


def from_deepgram(result: deepgram.Transcription) -> TranscriptionResult:
    return TranscriptionResult(
        provider=DeepgramTranscriber.name,
        text=result.text,
        utterances=tuple(
            Utterance(u.speaker, u.start, u.end, u.text, u.confidence) for u in result.utterances
        ),
        duration=result.duration,
        language=result.language,
        model=result.model,
        request_id=result.request_id,
    )


def _presigned_url(call: Call) -> str | None:
    storage = call.recording.storage
    if (call.recording_size or 0) <= URL_THRESHOLD_BYTES:
        return None
    if not getattr(storage, "querystring_auth", False):
        return None
    return recordings.recording_url(call)
