"""The seams between the pipeline's stages: the one place each next stage is started from.

- Ingest ends by moving a call to ``recorded`` and calling :func:`start_transcription`
  exactly once, in the transaction that made that move.
- Transcription (:mod:`calls.transcription`) ends by moving a call to ``transcribed`` and
  calling :func:`hand_off` exactly once, in the transaction that made that move.

**The hand-off registry.** ``calls`` sits below the apps that take a call on (analysis,
then the "apply" stage), so it never imports them: the next app registers its handler for
the stage it takes calls from in its ``AppConfig.ready()``::

    pipeline.register_handoff(Call.Stage.TRANSCRIBED, analysis.pipeline.start_analysis)

:func:`hand_off` calls that handler with the call, inside the transaction that moved it,
so the handler's own writes and ``enqueue`` (on commit) happen exactly once, or not at
all when the move rolls back. With no handler registered the call waits at its stage,
visibly (the admin's stage filter), where the next app's task will pick it up.
Search indexing is ``calls``' own and always follows transcription.

**The missed-call hook.** Ingest calls :func:`missed_call` once for an inbound call nobody
answered (voicemails included), in the transaction that ended its ingest; messaging
registers missed-call recovery there (:func:`register_missed_call`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

from calls.models import Call
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

Handoff = Callable[[Call], None]

_HANDOFFS: dict[str, Handoff] = {}
# A missed call's handler may return what it started; nothing reads it.
MissedHandler = Callable[[Call], object]
_MISSED: list[MissedHandler] = []
_ANSWERED: list[MissedHandler] = []


def register_handoff(stage: str, handler: Handoff) -> None:
    """Make ``handler`` take on every call that reaches ``stage``. One handler per stage:
    a second, different one is a wiring mistake and fails at start-up."""
    stage = Call.Stage(stage)
    current = _HANDOFFS.get(stage)
    if current is not None and current is not handler:
        raise ImproperlyConfigured(f"stage {stage} already hands calls to {current!r}")
    _HANDOFFS[stage] = handler


def unregister_handoff(stage: str) -> None:
    """Forget the handler of ``stage`` (tests; an app switched off)."""
    _HANDOFFS.pop(Call.Stage(stage), None)


def handoff_for(stage: str) -> Handoff | None:
    return _HANDOFFS.get(stage)


def register_missed_call(handler: MissedHandler) -> None:
    """Make ``handler`` take every missed call; one handler, like a stage's."""
    if _MISSED and _MISSED[0] is not handler:
        raise ImproperlyConfigured(f"missed calls already go to {_MISSED[0]!r}")
    _MISSED[:] = [handler]


def missed_call(call: Call) -> None:
    """A missed inbound call's ingest ended: the registered handler, if any, takes it."""
    if call.direction != Call.Direction.INBOUND or (call.answered and not call.voicemail):
        return
    for handler in _MISSED:
        handler(call)


def register_answered_call(handler: MissedHandler) -> None:
    """Make ``handler`` take every answered call when its ingest ends (messaging: a later
    answered call stops the contact's missed-call recovery at once); one handler."""
    if _ANSWERED and _ANSWERED[0] is not handler:
        raise ImproperlyConfigured(f"answered calls already go to {_ANSWERED[0]!r}")
    _ANSWERED[:] = [handler]


def answered_call(call: Call) -> None:
    """A call someone answered (not a voicemail) finished its ingest."""
    if not call.answered or call.voicemail:
        return
    for handler in _ANSWERED:
        handler(call)


def start_transcription(call: Call) -> None:
    """Hand a ``recorded`` call to transcription: enqueue its task on queue ``asr`` once
    the surrounding transaction commits (a transcriber that works elsewhere, such as
    Shunya's submit on ``uwc``, is handed the call from there)."""
    from calls import tasks  # tasks imports the services that import this module

    enqueue(Queue.ASR, tasks.transcribe_call, call.pk)


def hand_off(call: Call) -> None:
    """Hand a call that just reached its stage (``transcribed``) on: its transcript is
    indexed for search (queue ``indexing``), and the registered handler of that stage, if
    any, takes it; without one the call waits there (docs/operations.md "Stages")."""
    from calls import tasks  # tasks imports the services that import this module

    enqueue(Queue.INDEXING, tasks.index_call, call.pk)
    handler = _HANDOFFS.get(call.stage)
    if handler is None:
        logger.info("call %s is %s and waits: no stage takes it on yet", call.pk, call.stage)
        return
    handler(call)
