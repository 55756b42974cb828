"""Reads for messaging. The company comes first; every lookup by id includes it."""

from __future__ import annotations

import datetime

from django.db.models import Q, QuerySet

from messaging.models import AiCall, ConsentEvent, FollowUp, Message, MissedCallRecovery, Thread
from otto.erasure import pseudonyms
from otto.models import Company, Contact, Role, User

Action = ConsentEvent.Action


def thread_list(company: Company) -> QuerySet[Thread]:
    return Thread.objects.filter(company=company).select_related("contact")


def thread_messages(company: Company, thread: Thread) -> QuerySet[Message]:
    return Message.objects.filter(company=company, thread=thread)


def contact_messages(
    company: Company, contact: Contact, *, user: User, role: str
) -> QuerySet[Message]:
    """The contact's texts on their timeline: managers and CSRs see them (as they see the
    contact's calls); a sales rep none until leads link reps to contacts."""
    if role not in (Role.MANAGER, Role.CSR):
        return Message.objects.none()
    return Message.objects.filter(company=company, thread__contact=contact)


def contact_consent(
    company: Company, contact: Contact, *, user: User, role: str
) -> QuerySet[ConsentEvent]:
    """The ledger's events for the contact's number, on their timeline (same roles)."""
    if role not in (Role.MANAGER, Role.CSR) or not contact.phone:
        return ConsentEvent.objects.none()
    return ConsentEvent.objects.filter(company=company, phone=contact.phone)


def consent_keys(phone: str) -> list[str]:
    """The ledger's keys for a number: the number, and the pseudonym an erasure kept its
    opt-outs under (messaging.erasure), so an opt-out outlives the erasure."""
    return [phone, *pseudonyms(phone)]


def contact_ai_calls(
    company: Company, contact: Contact, *, user: User, role: str
) -> QuerySet[AiCall]:
    """The contact's AI calls that ended, on their timeline (same roles as texts)."""
    if role not in (Role.MANAGER, Role.CSR):
        return AiCall.objects.none()
    return AiCall.objects.filter(company=company, contact=contact, completed_at__isnull=False)


def consent_history(company: Company, phone: str, channel: str) -> QuerySet[ConsentEvent]:
    """Newest first."""
    return ConsentEvent.objects.filter(
        company=company, phone__in=consent_keys(phone), channel=channel
    ).order_by("-created_at", "-id")


def latest_consent(
    company: Company, phone: str, channel: str = "sms"
) -> tuple[str, int | None] | None:
    """The latest opt-out or opt-in (HELP changes nothing) and the message that caused it,
    or None when never recorded."""
    return (
        consent_history(company, phone, channel)
        .exclude(action=Action.HELP)
        .values_list("action", "message")
        .first()
    )


def consent_state(company: Company, phone: str, channel: str = "sms") -> str | None:
    """The latest opt-out or opt-in, or None when never recorded."""
    latest = latest_consent(company, phone, channel)
    return latest[0] if latest else None


def ai_voice_consent(company: Company, phone: str) -> ConsentEvent | None:
    """The ai_voice opt-in an AI call may rely on: the latest one, when no opt-out on any
    channel (STOP included) has followed it: a revocation is taken to cover every
    automated channel. None when there is none."""
    latest = (
        ConsentEvent.objects.filter(company=company, phone__in=consent_keys(phone))
        .filter(Q(channel=ConsentEvent.Channel.AI_VOICE) | Q(action=Action.OPT_OUT))
        .exclude(action=Action.HELP)
        .order_by("-created_at", "-id")
        .first()
    )
    if latest is None or (latest.channel, latest.action) != (
        ConsentEvent.Channel.AI_VOICE,
        Action.OPT_IN,
    ):
        return None
    return latest


def ai_voice_consented(company: Company, phone: str) -> bool:
    return ai_voice_consent(company, phone) is not None


def is_opted_out(company: Company, phone: str, channel: str = "sms") -> bool:
    return consent_state(company, phone, channel) == Action.OPT_OUT


def message_by_sid(company: Company, sid: str) -> Message | None:
    return Message.objects.filter(company=company, twilio_sid=sid).first()


def due_messages(now: datetime.datetime, limit: int = 500) -> list[int]:
    """Deferred messages whose window opened and queued ones whose retry is due."""
    due = Message.objects.filter(
        status__in=[Message.Status.SCHEDULED, Message.Status.QUEUED],
        next_attempt_at__lte=now,
    )
    return list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


def due_recoveries(now: datetime.datetime, limit: int = 500) -> list[int]:
    """Active recoveries whose next step is due, the longest waiting first."""
    due = MissedCallRecovery.objects.filter(
        status=MissedCallRecovery.Status.ACTIVE, next_action_at__lte=now
    )
    return list(due.order_by("next_action_at").values_list("pk", flat=True)[:limit])


def due_followups(now: datetime.datetime, limit: int = 500) -> list[int]:
    """Approved or auto-sent follow-ups whose time came and that have no message yet, the
    longest waiting first (messaging_followup_due_idx)."""
    due = FollowUp.objects.filter(
        status__in=[FollowUp.Status.APPROVED, FollowUp.Status.SCHEDULED],
        scheduled_for__lte=now,
        message__isnull=True,
    )
    return list(due.order_by("scheduled_for").values_list("pk", flat=True)[:limit])


def stale_sends(claimed_before: datetime.datetime, limit: int = 500) -> list[int]:
    """Sends claimed this long ago with no SID: their worker died mid-send."""
    stale = Message.objects.filter(
        status=Message.Status.SENDING, twilio_sid__isnull=True, claimed_at__lt=claimed_before
    )
    return list(stale.values_list("pk", flat=True)[:limit])
