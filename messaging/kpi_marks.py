"""What marks a call's day in the KPIs' daily rollup (analysis.rollup) when messaging's
side of recovery's figures (messaging.kpis) changes: a recovery made, removed or given a
new status; a recovery text sent, delivered or failed; a text coming in (a reply to the
contact's recoveries); a booking made, cancelled or removed (it may recover them). Each
marks in the transaction of the change. A module of its own: the services that move a
text's status call it, and messaging.kpis imports recovery, which imports them.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from analysis import rollup
from appointments.models import Appointment
from calls.models import Call
from messaging.models import Message, MissedCallRecovery

# The recovery fields the figures read; a save naming none of them changes none.
RECOVERY_FIELDS = frozenset({"status", "contact", "contact_id", "started_at", "call", "call_id"})


def mark_recovery(
    sender: Any, instance: MissedCallRecovery, update_fields: Any = None, **_: Any
) -> None:
    """A recovery made, removed, or saved with a new status: its call's figures move."""
    if update_fields is None or not RECOVERY_FIELDS.isdisjoint(update_fields):
        rollup.mark_calls([instance.call_id])


def update_recoveries(recoveries: QuerySet[MissedCallRecovery], **changes: Any) -> int:
    """``recoveries.update(**changes)`` (it sends no signal), then their calls marked: after
    the change, so that even outside a transaction no recompute can come between a mark
    and the change it announces."""
    calls = list(recoveries.values_list("call_id", flat=True))
    updated = recoveries.filter(call__in=calls).update(**changes)
    rollup.mark_calls(calls)
    return updated


def mark_contact_recoveries(contact_id: int | None) -> None:
    """The calls of a contact's recoveries: a booking may recover them, a reply answer them."""
    if contact_id is not None:
        rollup.mark_calls(Call.objects.filter(recoveries__contact_id=contact_id))


def mark_appointment(sender: Any, instance: Appointment, **_: Any) -> None:
    """An appointment made, cancelled or removed may recover the contact's recoveries (or
    stop doing so)."""
    mark_contact_recoveries(instance.contact_id)


def mark_message(message: Message) -> None:
    """A recovery text's status moved (sent, delivered, failed), or a text came in: the
    recovery's call, and for an inbound one the contact's recoveries' calls."""
    if message.recovery_id is not None:
        rollup.mark_calls(Call.objects.filter(recoveries=message.recovery_id))
    if message.direction == Message.Direction.INBOUND:
        rollup.mark_calls(Call.objects.filter(recoveries__contact__sms_threads=message.thread_id))


def message_written(sender: Any, instance: Message, **_: Any) -> None:
    mark_message(instance)
