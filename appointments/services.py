"""Writes to leads, appointments, tasks and signals that people and the pipeline share.

The ``applied`` stage (``appointments.outcomes``) and the API both change a lead's status
through :func:`change_lead_status`, so every change writes exactly one history row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from appointments.models import Lead, LeadStatusChange

if TYPE_CHECKING:
    from calls.models import Call
    from otto.models import User


def change_lead_status(
    lead: Lead,
    to_status: str,
    *,
    actor: User | None,
    reason: str = "",
    call: Call | None = None,
    analysis_version: int | None = None,
) -> bool:
    """Move ``lead`` to ``to_status`` and write its history row; False (nothing written)
    when it is already there. ``actor`` is None for the pipeline. A closed status
    (won, lost) makes the lead inactive, so the contact's next call opens a new lead."""
    to_status = Lead.Status(to_status)
    if lead.status == to_status:
        return False
    closing = to_status in Lead.CLOSED
    with transaction.atomic():
        history = LeadStatusChange(
            company_id=lead.company_id,
            lead=lead,
            from_status=lead.status,
            to_status=to_status,
            reason=reason[:255],
            actor=actor,
            call=call,
            analysis_version=analysis_version,
        )
        lead.status = to_status
        lead.is_active = not closing
        lead.closed_at = timezone.now() if closing else None
        lead.save(update_fields=["status", "is_active", "closed_at", "updated_at"])
        history.save()
    return True


def open_lead(
    company_id: int,
    contact_id: int,
    *,
    status: str = Lead.Status.NEW,
    source: str = "",
    actor: User | None = None,
    reason: str = "",
    call: Call | None = None,
    analysis_version: int | None = None,
) -> Lead:
    """A new active lead for the contact with its first history row (from blank). The
    partial unique constraint refuses a second active lead: callers that may race (the
    pipeline) take the contact's active lead instead, inside their own transaction."""
    with transaction.atomic():
        lead = Lead.objects.create(
            company_id=company_id, contact_id=contact_id, status=status, source=source[:200]
        )
        LeadStatusChange.objects.create(
            company_id=company_id,
            lead=lead,
            from_status="",
            to_status=status,
            reason=reason[:255],
            actor=actor,
            call=call,
            analysis_version=analysis_version,
        )
    return lead
