"""The seam between ingest and the rest of the call pipeline.

Ingest ends by moving a call to ``recorded`` (its audio in storage) and calling
:func:`start_transcription` exactly once, in the transaction that made that move. This is
the one place the next stage is started from: the pipeline issue fills in
:func:`transcribe_call` (Deepgram or Shunya, per tenant) behind the same task, so neither
ingest nor its tests change when transcription arrives.
"""

from __future__ import annotations

import logging

from calls.models import Call
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)


def start_transcription(call: Call) -> None:
    """Hand a ``recorded`` call to transcription: enqueue its task on queue ``asr`` once
    the surrounding transaction commits."""
    from calls import tasks

    enqueue(Queue.ASR, tasks.transcribe_call, call.pk)


def transcribe_call(call_id: int) -> None:
    """Transcription is not built yet (the pipeline issue): the call stays ``recorded``,
    which is exactly where that issue's transcriber will pick it up. Nothing is faked."""
    logger.info("call %s is recorded and waits for transcription (not built yet)", call_id)
