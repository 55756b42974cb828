"""CallRail's view of a call, written onto its row: the API is the truth, the webhook only
a trigger."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from calls import stages
from calls.models import Call
from calls.services.contacts import contact_for_caller
from calls.signals import call_changed
from integrations.callrail import schemas
from otto import selectors as core_selectors
from otto import services as core_services

logger = logging.getLogger(__name__)


def apply_callrail_call(
    call: Call, found: schemas.Call, *, claim: stages.Claim | None = None
) -> Call:
    """Write CallRail's view of the call and link its contact and the member who handled
    it; with ``claim``, only while its lease holds (else :class:`calls.stages.LeaseLost`)."""
    fields = fields_from_api(found)
    started_before = call.started_at
    with transaction.atomic():
        if fields["customer_number"]:
            fields["contact"] = contact_for_caller(call.company, fields["customer_number"], found)
        handler = core_selectors.member_with_email(call.company, found.agent_email)
        if handler is not None:
            fields["handled_by"] = handler
        elif found.agent_email:
            # Kept as it was (null, or a manager's correction): logged, never guessed.
            logger.info("call %s: agent email matches no member of its company", call.pk)
        rows = claim.rows() if claim else Call.objects.filter(pk=call.pk)
        if not rows.update(**fields):
            raise stages.LeaseLost
        for name, value in fields.items():
            setattr(call, name, value)
        call_changed.send(Call, call=call, started=[started_before, call.started_at])
    return call


def fields_from_api(found: schemas.Call) -> dict[str, Any]:
    """The ``Call`` fields CallRail's answer sets, bounded to the columns' sizes."""

    def text(value: str | None, limit: int) -> str:
        return (value or "")[:limit]

    def seconds(value: int | None) -> int | None:
        return value if value is not None and value >= 0 else None

    direction = found.direction if found.direction in Call.Direction.values else ""
    return {
        "direction": direction,
        "answered": found.answered,
        "voicemail": bool(found.voicemail),
        "started_at": found.start_time,
        "duration_seconds": seconds(found.duration),
        "customer_number": _e164(found.customer_phone_number),
        "tracking_number": _e164(found.tracking_phone_number),
        "customer_name": text(found.customer_name, 200),
        "customer_city": text(found.customer_city, 100),
        "customer_state": text(found.customer_state, 50),
        "source_name": text(found.source_name or found.source, 200),
        "campaign": text(found.campaign, 200),
        "tags": list(found.tags),
        "note": found.note or "",
        "lead_status": text(found.lead_status, 50),
        "recording_duration_seconds": seconds(found.recording_duration),
    }


def _e164(number: str | None) -> str:
    # Blocked and anonymous callers have no usable number: the call is kept without one.
    if not number:
        return ""
    try:
        return core_services.check_phone(number)
    except ValidationError:
        return ""
