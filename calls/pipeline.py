"""The seams between the pipeline's stages: the one place each next stage is started from.

- Ingest ends by moving a call to ``recorded`` and calling :func:`start_transcription`
  exactly once, in the transaction that made that move.
- Transcription (:mod:`calls.transcription`) ends by moving a call to ``transcribed`` and
  calling :func:`start_analysis` exactly once, in the transaction that made that move.

Analysis is not built yet (a later issue): :func:`start_analysis` starts nothing and the
call waits at ``transcribed``, visibly, where the analysis issue's task will pick it up
(filling in this one function). Nothing is faked: no analysis row, no ``analyzing`` stage.
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


def start_analysis(call: Call) -> None:
    """Hand a ``transcribed`` call on: its transcript is indexed for search (queue
    ``indexing``), and analysis, not built yet, leaves the call waiting at ``transcribed``
    (docs/operations.md "Stages")."""
    from calls import tasks

    enqueue(Queue.INDEXING, tasks.index_call, call.pk)
    logger.info("call %s is transcribed and waits for analysis (not built yet)", call.pk)
