"""The ``applied`` stage: ``analyzed → applying → applied → done`` (docs/operations.md
"Stages", docs/outcomes.md).

- :func:`start_apply` is the hand-off of ``analyzed`` (registered in
  :meth:`appointments.apps.AppointmentsConfig.ready`): analysis calls it in the transaction
  that moved the call there, and it enqueues :func:`apply_call` on queue ``followups`` on
  commit. A re-analysis hands the call to ``analyzed`` again, so its new version is applied
  the same way.
- :func:`apply_call` claims the call (``analyzed → applying``, lease
  ``PIPELINE_STAGE_DEADLINES["applying"]``): a redelivered task finds it taken, and the
  reaper takes it back from a worker that died. The outcomes
  (:func:`appointments.outcomes.write_outcomes`) and the move to ``applied`` are one
  transaction, written only while the claim holds.
- From ``applied`` the call goes to the handler registered for ``applied`` (missed-call
  recovery and follow-ups, later); with none, no follow-up is needed and it is ``done``.
- Geocoding the appointment is a provider call: it is enqueued once that transaction
  commits (:mod:`appointments.geocoding`), and never holds up the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from analysis import rollup
from analysis.models import CallAnalysis
from appointments.outcomes import write_outcomes
from calls import pipeline, stages
from calls.models import Call
from otto import audit
from otto.models import AuditAction
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

Stage = Call.Stage


# Told of every application, in its transaction (messaging: a missed call's analysis
# saying spam ends its recovery). Listeners, unlike the stage's one handler, only watch.
AppliedListener = Callable[[Call, CallAnalysis], object]
_APPLIED: list[AppliedListener] = []


def register_applied(listener: AppliedListener) -> None:
    """Have ``listener(call, analysis)`` told when a call's analysis has been applied."""
    if listener not in _APPLIED:
        _APPLIED.append(listener)


class NoAnalysis(Exception):
    """An ``analyzed`` call with no current analysis (it was deleted): nothing to apply."""


def start_apply(call: Call) -> None:
    """Enqueue the call's outcomes on queue ``followups`` once the transaction that moved
    it to ``analyzed`` commits. Its attempts restart: analysis' were its own."""
    from appointments import tasks  # tasks imports this module

    Call.objects.filter(pk=call.pk).update(attempts=0)
    call.attempts = 0
    enqueue(Queue.FOLLOWUPS, tasks.apply_call, call.pk)


def apply_call(call_id: int) -> str | None:
    """Apply one ``analyzed`` call's current analysis; its stage afterwards, or None when
    it was not ours (not ``analyzed``, not due, or claimed by another worker)."""
    call = Call.objects.select_related("company").filter(pk=call_id).first()
    if call is None or call.stage != Stage.ANALYZED:
        return None
    claim = stages.claim(call, Stage.APPLYING)
    if claim is None:
        logger.info("call %s is not due for its outcomes; skipped", call_id)
        return None
    return stages.attempt(claim, lambda: record_outcomes(claim))


def record_outcomes(claim: stages.Claim) -> str:
    """Write the outcomes and move the call to ``applied`` (then on), in one transaction,
    only while ``claim`` holds (else :class:`calls.stages.LeaseLost`, nothing written)."""
    call = claim.call
    with transaction.atomic():
        if not stages.move(claim.rows(), call, Stage.APPLIED, next_attempt_at=None, last_error=""):
            raise stages.LeaseLost
        analysis = CallAnalysis.objects.filter(call=call, is_current=True).first()
        if analysis is None:
            raise NoAnalysis(f"call {call.pk} has no current analysis")
        written = write_outcomes(call, analysis)
        for listener in _APPLIED:
            listener(call, analysis)
        if written.geocode and written.appointment is not None:
            from appointments import tasks

            enqueue(Queue.FOLLOWUPS, tasks.geocode_appointment, written.appointment.pk)
        handler = pipeline.handoff_for(Stage.APPLIED)
        if handler is not None:
            handler(call)
        else:
            stages.move(
                Call.objects.filter(stage=Stage.APPLIED),
                call,
                Stage.DONE,
                reason="no follow-ups needed",
            )
    logger.info("call %s: outcomes of analysis v%s applied", call.pk, analysis.version)
    rollup.refresh_call(call)
    return call.stage


class ReapplyRefused(Exception):
    """The call's outcomes cannot be applied again now; the message says why."""


REAPPLY_FROM = (Stage.APPLIED, Stage.DONE, Stage.ANALYZED, Stage.FAILED)


def reapply_outcomes(call: Call, *, actor: Any, reason: str = "") -> None:
    """Apply the call's current analysis again (ops, after a correction): one compare-and-
    set back to ``analyzed`` from the stage the call was seen in, audited as a stage change
    with the actor, then the stage runs as after analysis."""
    if call.stage not in REAPPLY_FROM:
        raise ReapplyRefused(f"call {call.pk} is {call.stage}: it has no outcomes to re-apply")
    if not CallAnalysis.objects.filter(call=call, is_current=True).exists():
        raise ReapplyRefused(f"call {call.pk} has no analysis")
    note = "outcomes re-applied by ops" + (f": {reason}" if reason else "")
    with transaction.atomic():
        moved = stages.move(
            Call.objects.filter(stage=call.stage),
            call,
            Stage.ANALYZED,
            reason=note,
            actor=actor,
            next_attempt_at=None,
            last_error="",
        )
        if not moved:
            raise ReapplyRefused(f"call {call.pk} changed stage meanwhile; reload and try again")
        audit.record(
            AuditAction.CALL_OUTCOMES_REAPPLIED,
            company=call.company,
            actor=actor,
            target_type="call",
            target_id=call.pk,
        )
        start_apply(call)
