"""Writes for messaging: threads, inbound and outbound messages, statuses, consent."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from messaging import consent, gate, kpi_marks
from messaging.models import ConsentEvent, FollowUp, Message, MissedCallRecovery, Thread
from otto.models import Company, Contact, User
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

Status = Message.Status
PREVIEW_LENGTH = 160

# Forward order of an outbound message's delivery. Callbacks arrive out of order, so a
# status only moves to a higher rank; undelivered and failed are terminal.
STATUS_RANK: dict[str, int] = {
    Status.QUEUED: 0,
    Status.SENDING: 1,
    Status.SENT: 2,
    Status.DELIVERED: 3,
    Status.UNDELIVERED: 4,
    Status.FAILED: 4,
}
OPTED_OUT_AT_CARRIER = "21610"
CONSENT_CLOCK_SKEW = datetime.timedelta(minutes=5)

DEFAULT_HELP_REPLY = (
    "{company}: reply to this text and our team will answer. "
    "Msg & data rates may apply. Reply STOP to opt out."
)
# Why a missed-call recovery stopped (messaging.recovery).
REPLIED = "the customer replied"
PERSON_TEXTED = "a person texted them"
OPTED_OUT = "the number opted out of texts"

OPT_OUT_CONFIRMATION = (
    "{company}: you are unsubscribed and will get no more texts from us. "
    "Reply START to resubscribe."
)


class SendRefused(Exception):
    """The gate refused a manual message; ``message`` is stored ``blocked`` with why."""

    def __init__(self, decision: gate.Decision, message: Message) -> None:
        super().__init__(decision.reason)
        self.decision = decision
        self.message = message


def ensure_thread(company: Company, phone: str) -> Thread:
    """The contact's thread, the contact and the thread created when new."""
    contact, _ = Contact.objects.get_or_create(company=company, phone=phone)
    thread, _ = Thread.objects.get_or_create(
        company=company, contact=contact, defaults={"phone": phone}
    )
    return thread


def _touch(thread: Thread, message: Message, *, inbound: bool) -> None:
    changes: dict[str, Any] = {
        "last_message_at": message.created_at,
        "last_message_preview": message.body[:PREVIEW_LENGTH],
    }
    if inbound:
        changes["unread"] = F("unread") + 1
        changes["last_inbound_at"] = thread.last_inbound_at = message.created_at
    Thread.objects.filter(pk=thread.pk).update(**changes)


def stop_recoveries(company: Company, status: str, reason: str, **contact: Any) -> int:
    """End the active recoveries of a contact (``contact_id=``, or ``contact__phone=``):
    the event side of the stop conditions; a step re-checks them when it runs."""
    active = MissedCallRecovery.objects.filter(
        company=company, status=MissedCallRecovery.Status.ACTIVE, **contact
    )
    return kpi_marks.update_recoveries(
        active, status=status, stopped_reason=reason, next_action_at=None
    )


# The follow-up statuses a reply, a booking or a person still cancels (messaging.followups).
PENDING_FOLLOWUPS = (FollowUp.Status.DRAFT, FollowUp.Status.APPROVED, FollowUp.Status.SCHEDULED)


def stop_followups(company: Company, reason: str, **match: Any) -> int:
    """Cancel the pending follow-ups matching ``match`` (``contact_id=``, ``pk=``, …) with
    ``reason``; a text one of them left waiting for its window is blocked, not sent."""
    with transaction.atomic():
        found = list(
            FollowUp.objects.select_for_update()
            .filter(company=company, status__in=PENDING_FOLLOWUPS, **match)
            .values_list("pk", "message_id")
        )
        if not found:
            return 0
        FollowUp.objects.filter(pk__in=[pk for pk, _ in found]).update(
            status=FollowUp.Status.CANCELLED, status_reason=reason[:255]
        )
        waiting = [message for _, message in found if message is not None]
        Message.objects.filter(pk__in=waiting, status=Status.SCHEDULED).update(
            status=Status.BLOCKED, status_reason=f"follow-up cancelled: {reason}"[:255]
        )
    return len(found)


def record_consent(
    company: Company,
    *,
    phone: str,
    action: str,
    source: str,
    channel: str = ConsentEvent.Channel.SMS,
    message: Message | None = None,
    actor: User | None = None,
    note: str = "",
    **proof: Any,
) -> ConsentEvent:
    """Append one event to the ledger (never edits one); ``proof``: the event's
    ``disclosure_version``, ``evidence`` and ``obtained_at``. An SMS opt-out stops the
    number's recoveries."""
    if action == ConsentEvent.Action.OPT_OUT and channel == ConsentEvent.Channel.SMS:
        stop_recoveries(company, MissedCallRecovery.Status.STOPPED, OPTED_OUT, contact__phone=phone)
    return ConsentEvent.objects.create(
        company=company,
        phone=phone,
        channel=channel,
        action=action,
        source=source,
        message=message,
        actor=actor,
        note=note[:255],
        **proof,
    )


def receive_message(
    company: Company,
    *,
    sid: str,
    from_number: str,
    to_number: str,
    body: str,
    media: list[dict[str, str]],
) -> Message:
    """Store an inbound SMS once per Twilio sid, thread it, and apply its consent meaning."""
    existing = Message.objects.filter(twilio_sid=sid).first()
    if existing is not None:
        return existing
    thread = ensure_thread(company, from_number)
    message = Message.objects.create(
        company=company,
        thread=thread,
        direction=Message.Direction.INBOUND,
        body=body,
        status=Status.RECEIVED,
        from_number=from_number,
        to_number=to_number,
        media=media,
        twilio_sid=sid,
    )
    _touch(thread, message, inbound=True)
    meaning = consent.classify(body)
    if meaning is not None:
        action, source = meaning
        record_consent(company, phone=from_number, action=action, source=source, message=message)
        _auto_reply(company, thread, message, action=action, source=source)
    stop_recoveries(
        company, MissedCallRecovery.Status.REPLIED, REPLIED, contact_id=thread.contact_id
    )
    stop_followups(company, REPLIED, contact_id=thread.contact_id)
    return message


def help_reply(company: Company) -> str:
    """The tenant's answer to HELP, or the default naming the company and STOP."""
    return company.sms_help_reply.strip() or DEFAULT_HELP_REPLY.format(company=company.name)


def _auto_reply(
    company: Company, thread: Thread, message: Message, *, action: str, source: str
) -> None:
    """HELP gets the tenant's help text; a free-text opt-out gets one confirmation.

    A keyword STOP gets none from Otto: Twilio's own keyword handling has answered it and
    blocks anything after (error 21610). A free-text revocation is invisible to Twilio, so
    Otto confirms it, once: the gate lets through the one auto-reply answering the text
    that opted the number out (docs/messaging.md)."""
    if action == ConsentEvent.Action.HELP:
        body = help_reply(company)
    elif action == ConsentEvent.Action.OPT_OUT and source == ConsentEvent.Source.FREE_TEXT:
        body = OPT_OUT_CONFIRMATION.format(company=company.name)
    else:
        return
    try:
        send_message(company, thread, body=body, kind=Message.Kind.AUTO_REPLY, reply_to=message)
    except SendRefused as refused:
        # Stored blocked with the reason (e.g. HELP from a number that opted out).
        logger.info("auto-reply to message %s refused: %s", message.pk, refused)


def record_status(message: Message, status: str, error_code: str = "") -> bool:
    """Move an outbound message forward to ``status``; False when that would go backwards."""
    rank = STATUS_RANK.get(status)
    if rank is None:
        return False
    lower = [name for name, value in STATUS_RANK.items() if value < rank]
    changes: dict[str, Any] = {"status": status}
    if error_code:
        changes["error_code"] = error_code
    moved = Message.objects.filter(pk=message.pk, status__in=lower).update(**changes)
    if moved:
        kpi_marks.mark_message(message)
    if error_code == OPTED_OUT_AT_CARRIER:
        record_consent(
            message.company,
            phone=message.to_number,
            action=ConsentEvent.Action.OPT_OUT,
            source=ConsentEvent.Source.CARRIER_ERROR,
            message=message,
            note=f"Twilio error {error_code}",
        )
    return bool(moved)


def send_message(
    company: Company,
    thread: Thread,
    *,
    body: str,
    kind: str = Message.Kind.MANUAL,
    sent_by: User | None = None,
    reply_to: Message | None = None,
    recovery: MissedCallRecovery | None = None,
    now: datetime.datetime | None = None,
) -> Message:
    """Store an outbound message and queue it through the gate.

    Allowed: ``queued`` and sent on queue ``followups``. Deferred (automated, quiet hours):
    ``scheduled`` for the window's opening. Refused (opted out, or a manual message in quiet
    hours): stored ``blocked`` with the reason and :class:`SendRefused` raised.
    """
    from messaging import tasks  # tasks imports this module back

    now = now or timezone.now()
    decision = gate.check_send(
        company,
        to=thread.phone,
        kind=kind,
        now=now,
        last_inbound_at=thread.last_inbound_at,
        contact_state=thread.contact.state,
        reply_to=reply_to.pk if reply_to else None,
    )
    due: datetime.datetime | None
    if decision.allowed:
        status, reason, due = Status.QUEUED, "", now
    elif decision.deferred:
        status, reason, due = Status.SCHEDULED, decision.reason, decision.send_at
    else:
        status, reason, due = Status.BLOCKED, decision.reason, None
    message = Message.objects.create(
        company=company,
        thread=thread,
        direction=Message.Direction.OUTBOUND,
        body=body,
        status=status,
        status_reason=reason,
        from_number=company.twilio_number,
        to_number=thread.phone,
        sent_by=sent_by,
        kind=kind,
        reply_to=reply_to,
        recovery=recovery,
        scheduled_for=decision.send_at if decision.deferred else None,
        next_attempt_at=due,
    )
    if status == Status.BLOCKED:
        raise SendRefused(decision, message)
    _touch(thread, message, inbound=False)
    if kind == Message.Kind.MANUAL:
        stop_recoveries(
            company,
            MissedCallRecovery.Status.STOPPED,
            PERSON_TEXTED,
            contact_id=thread.contact_id,
        )
    if status == Status.QUEUED:
        enqueue(Queue.FOLLOWUPS, tasks.deliver_message, message.pk)
    return message


def mark_read(thread: Thread) -> None:
    Thread.objects.filter(pk=thread.pk).update(unread=0)


def opt_out(
    company: Company,
    *,
    phone: str,
    channel: str,
    actor: User | None,
    source: str,
    note: str = "",
) -> ConsentEvent:
    """A person records an opt-out (API or admin)."""
    return record_consent(
        company,
        phone=phone,
        action=ConsentEvent.Action.OPT_OUT,
        source=source,
        channel=channel,
        actor=actor,
        note=note,
    )


def check_ai_voice_opt_in(
    *, disclosure_version: str, evidence: str, obtained_at: datetime.datetime | None
) -> None:
    """An ai_voice opt-in is evidence for a lawyer: which disclosure, how, and when."""
    errors: dict[str, str] = {}
    if not disclosure_version.strip():
        errors["disclosure_version"] = "Which disclosure text (its version) the person heard."
    if not evidence.strip():
        errors["evidence"] = 'How the consent was given, e.g. "verbal, call CA… at 02:13".'
    if obtained_at is not None and obtained_at > timezone.now() + CONSENT_CLOCK_SKEW:
        errors["obtained_at"] = "Consent cannot have been given in the future."
    if errors:
        raise ValidationError(errors)


def opt_in_ai_voice(
    company: Company,
    *,
    phone: str,
    actor: User | None,
    disclosure_version: str,
    evidence: str,
    obtained_at: datetime.datetime | None = None,
    note: str = "",
) -> ConsentEvent:
    """A person records that ``phone`` agreed to AI calls, with the proof.

    An SMS opt-in is never recorded this way: only the customer texting START lifts an
    SMS opt-out (Twilio blocks the number until then anyway)."""
    check_ai_voice_opt_in(
        disclosure_version=disclosure_version, evidence=evidence, obtained_at=obtained_at
    )
    return record_consent(
        company,
        phone=phone,
        channel=ConsentEvent.Channel.AI_VOICE,
        action=ConsentEvent.Action.OPT_IN,
        source=ConsentEvent.Source.API,
        actor=actor,
        note=note,
        disclosure_version=disclosure_version.strip(),
        evidence=evidence.strip(),
        obtained_at=obtained_at or timezone.now(),
    )


def record_manual_consent(
    company: Company,
    *,
    phone: str,
    channel: str,
    action: str,
    actor: User | None,
    note: str = "",
    disclosure_version: str = "",
    evidence: str = "",
    obtained_at: datetime.datetime | None = None,
) -> ConsentEvent:
    """What a person records through ``consent/``: an opt-out on any channel, or an
    ai_voice opt-in with its proof. Never an SMS opt-in (see :func:`opt_in_ai_voice`)."""
    if action == ConsentEvent.Action.OPT_OUT:
        return opt_out(
            company,
            phone=phone,
            channel=channel,
            actor=actor,
            source=ConsentEvent.Source.API,
            note=note,
        )
    if channel != ConsentEvent.Channel.AI_VOICE:
        raise ValidationError(
            {"action": "An SMS opt-in comes only from the customer texting START."}
        )
    return opt_in_ai_voice(
        company,
        phone=phone,
        actor=actor,
        disclosure_version=disclosure_version,
        evidence=evidence,
        obtained_at=obtained_at,
        note=note,
    )
