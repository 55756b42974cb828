"""Ops' hands on the pipeline: retrying a call from a stage, and correcting speaker roles
and who handled the call.

**Retry** (:func:`retry_stage`, API ``POST calls/{id}/retry/`` and the admin). A ``failed``
call restarts from the stage it failed in; ``from_stage`` forces a re-run from an earlier
stage, whatever the call's stage:

=================  ==============  ========================================================
``from_stage``     back to         what runs again
=================  ==============  ========================================================
``ingest``         ``received``    CallRail details + recording download, then on
``recording``      ``received``    the same, the stored recording replaced once the new
                                  one is in storage (kept if the download fails)
``transcription``  ``recorded``    transcription (the transcript is replaced), then on
=================  ==============  ========================================================

A retry resets ``attempts``, is one compare-and-set from the stage the call was seen in
(a call that moved meanwhile is refused, not overwritten), and is audited as a
:class:`~calls.models.CallStageChange` carrying the actor and the reason, and as a
``call.retried`` event in the tenant's audit log (:mod:`otto.audit`). A worker that
still held the call loses its lease and writes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from calls import pipeline, stages
from calls.models import Call, CallStageChange, Transcript
from calls.signals import call_changed
from otto import audit
from otto.models import AuditAction

logger = logging.getLogger(__name__)

Stage = Call.Stage

FROM_STAGES = ("ingest", "recording", "transcription")
# The stage a call failed in → where a plain retry restarts it.
# Keyed by the stage's value: the history's from_stage column reads back a plain str.
_RESTART: dict[str, str] = {
    Stage.RECEIVED: "ingest",
    Stage.INGESTING: "ingest",
    Stage.RECORDED: "transcription",
    Stage.TRANSCRIBING: "transcription",
}


class RetryRefused(Exception):
    """The call cannot be retried as asked; the message says why (API: 409)."""


def retry_stage(call: Call, *, actor: Any, from_stage: str | None = None, reason: str = "") -> str:
    """Restart ``call`` (see the module's table); returns the ``from_stage`` used."""
    if from_stage is None:
        if call.stage != Stage.FAILED:
            raise RetryRefused(
                f"Only a failed call is retried; this one is {call.stage}. "
                "Pass ?from_stage= to re-run it from an earlier stage."
            )
        from_stage = failed_in(call)
    if from_stage not in FROM_STAGES:
        raise ValueError(f"from_stage must be one of {', '.join(FROM_STAGES)}")
    note = f"retried by ops from {from_stage}" + (f": {reason}" if reason else "")
    if from_stage == "transcription":
        moved = _rerun_transcription(call, actor=actor, reason=note)
    else:
        # Imported here: the admin imports this module; the ingest service only loads here.
        from calls import services

        # Ingest always downloads the audio again; a call past ingest goes back to it only
        # as a re-fetch (else ingest would just refresh its details).
        refetch = from_stage == "recording" or call.stage not in (
            Stage.RECEIVED,
            Stage.INGESTING,
            Stage.FAILED,
            Stage.SKIPPED,
        )
        moved = services.request_ingest(call, refetch_recording=refetch, actor=actor, reason=note)
    if not moved:
        raise RetryRefused("The call changed stage meanwhile; reload it and try again.")
    audit.record(
        AuditAction.CALL_RETRIED,
        company=call.company,
        actor=actor,
        target_type="call",
        target_id=call.pk,
        changes={"from_stage": from_stage},
    )
    return from_stage


def failed_in(call: Call) -> str:
    """Where a failed call restarts: the stage it failed from, per its history."""
    last = (
        CallStageChange.objects.filter(call=call, to_stage=Stage.FAILED)
        .order_by("-created_at", "-pk")
        .values_list("from_stage", flat=True)
        .first()
    )
    if last in _RESTART:
        return _RESTART[last]
    return "transcription" if call.recording else "ingest"


def _rerun_transcription(call: Call, *, actor: Any, reason: str) -> bool:
    if not call.recording:
        raise RetryRefused("The call has no stored recording; retry it from ingest.")
    with transaction.atomic():
        moved = stages.move(
            Call.objects.filter(stage=call.stage),
            call,
            Stage.RECORDED,
            reason=reason,
            actor=actor,
            attempts=0,
            next_attempt_at=None,
            last_error="",
        )
        if moved:
            pipeline.start_transcription(call)
    return moved


# --- speaker roles ------------------------------------------------------------------------

ROLES = ("agent", "customer")


class NoTranscript(Exception):
    """The call has no transcript (yet)."""


def correct_roles(
    call: Call, *, actor: Any, swap: bool = False, roles: dict[str, str] | None = None
) -> Transcript:
    """Set the speaker → role mapping of ``call``'s transcript by hand: swap the two roles,
    or set them per speaker. The utterances follow; who corrected it and when is kept."""
    with transaction.atomic():
        transcript = Transcript.objects.select_for_update().filter(call=call).first()
        if transcript is None:
            raise NoTranscript("This call has no transcript yet.")
        speakers = {str(u.get("speaker")) for u in transcript.utterances}
        mapping = {str(k): v for k, v in (transcript.roles or {}).items()}
        if swap:
            other = {"agent": "customer", "customer": "agent"}
            mapping = {speaker: other.get(role, role) for speaker, role in mapping.items()}
        for speaker, role in (roles or {}).items():
            if str(speaker) not in speakers:
                raise ValueError(f"speaker {speaker} does not speak in this transcript")
            if role not in ROLES:
                raise ValueError(f"role must be one of {', '.join(ROLES)}")
            mapping[str(speaker)] = role
        transcript.roles = mapping
        transcript.utterances = [
            {**u, "role": mapping.get(str(u.get("speaker")), u.get("role", ""))}
            for u in transcript.utterances
        ]
        transcript.roles_confidence = 1.0
        transcript.roles_method = "corrected"
        transcript.roles_corrected_by = actor if actor and actor.is_authenticated else None
        transcript.roles_corrected_at = timezone.now()
        transcript.save()
    return transcript


# --- who handled the call -----------------------------------------------------------------


def correct_handled_by(call: Call, user: Any, *, actor: Any) -> Call:
    """Attribute ``call`` to ``user`` (a member of the call's company, checked by the
    caller; None clears it), by hand. Logged with the actor, as KPIs per CSR follow it."""
    before = call.handled_by_id
    with transaction.atomic():
        Call.objects.filter(pk=call.pk, company_id=call.company_id).update(handled_by=user)
        call_changed.send(Call, call=call, started=[call.started_at])
    logger.info(
        "call handled_by corrected",
        extra={
            "call": call.pk,
            "from_user": before,
            "to_user": getattr(user, "pk", None),
            "actor": getattr(actor, "pk", None),
        },
    )
    call.refresh_from_db()
    return call
