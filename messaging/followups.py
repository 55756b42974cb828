"""Follow-ups of qualified calls that did not book (DESIGN §9.5, docs/recovery.md).

- **Drafting.** :func:`on_applied` is the hand-off of the ``applied`` stage (registered in
  :meth:`messaging.apps.MessagingConfig.ready`; appointments calls it in the transaction
  that wrote the call's outcomes). A qualified, unbooked call gets one follow-up (a text,
  or an AI call when :func:`messaging.voice.followup_channel` says so), unique per call
  and channel (a re-analysis or a re-applied outcome drafts nothing
  twice), its text from the analysis when it suggests one, else the tenant's template.
  A booked call cancels the contact's pending follow-ups. The call then moves to ``done``.
- **When.** :func:`send_time`: the first minute, at least :data:`AFTER_CALL` after the
  call ended, that is inside the tenant's business hours (its time zone) *and* inside the
  gate's window for the recipient (quiet hours, state rules, holidays).
- **Approval.** A draft waits for a person (:func:`approve`, :func:`edit`,
  :func:`cancel`), unless the tenant has ``followup_auto_send`` on: then it is created
  ``scheduled``.
- **Sending.** The ``followup-send`` schedule picks the due rows (``approved`` or
  ``scheduled``, ``scheduled_for`` reached, no message yet) and :func:`run_due` claims each
  with a compare-and-set on ``status``, then hands it to its channel's sender
  (:data:`SENDERS`). An SMS goes through :func:`messaging.services.send_message`: the gate
  and the one send path.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, transaction
from django.utils import timezone

from analysis.selectors import current_analysis, effective_fields
from calls import stages
from calls.models import Call
from messaging import gate, services, voice
from messaging.models import FollowUp, Message, MissedCallRecovery, Thread
from otto.models import Company, User

logger = logging.getLogger(__name__)

Status = FollowUp.Status
# The earliest a follow-up goes after the call ended: the customer has just hung up, and
# a person has time to approve it.
AFTER_CALL = datetime.timedelta(hours=1)
# A call older than this when its outcomes are applied (a re-analysis of history) gets no
# follow-up: texting about last month's call is worse than not texting.
TOO_OLD = datetime.timedelta(days=7)
# The statuses a reply, a booking or a person can still cancel.
PENDING = services.PENDING_FOLLOWUPS
# The statuses the sender picks up once ``scheduled_for`` is reached.
DUE = (Status.APPROVED, Status.SCHEDULED)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

OPT_OUT = " Reply STOP to opt out."
DEFAULT_TEXT = (
    "Hi {name}, this is {company} following up on your call. "
    "Reply here and we will find a time that works for you. Reply STOP to opt out."
)
DEFAULT_TEXT_OBJECTION = (
    "Hi {name}, this is {company} following up on your call. Happy to answer anything about "
    "{objection}. Reply here and we will find a time that works for you. Reply STOP to opt out."
)
# How the template names an objection's category (analysis.schema.ObjectionCategory).
OBJECTIONS = {
    "price": "the price",
    "timing": "the timing",
    "decision_maker": "talking it over at home",
    "competitor": "how we compare",
    "trust": "who we are and how we work",
    "scope": "the work involved",
    "financing": "financing options",
    "other": "your questions",
}
# The analysis field holding a suggested follow-up text. The current analyzers do not
# fill it (analysis.schema), so today every draft is the template's.
ANALYZER_TEXT = "followup_text"

BOOKED = "the contact booked (call {call})"
NOT_WANTED = "analysis v{version} no longer says qualified and not booked"


class IllegalTransition(Exception):
    """The follow-up is not in a status that allows this; ``status`` is the one it is in."""

    def __init__(self, followup: FollowUp, action: str) -> None:
        super().__init__(f"a {followup.status} follow-up cannot be {action}")
        self.status = followup.status


# --- drafting ------------------------------------------------------------------------------


def wanted(fields: dict[str, Any]) -> bool:
    """A qualified call that did not book (service not offered is not a lost booking)."""
    return bool(fields.get("qualified")) and fields.get("booking_status") == "not_booked"


def objection(fields: dict[str, Any]) -> str:
    """The first unresolved objection, in words; "" when there is none."""
    for item in fields.get("objections") or []:
        if isinstance(item, dict) and not item.get("resolved"):
            return OBJECTIONS.get(str(item.get("category")), OBJECTIONS["other"])
    return ""


def draft_text(company: Company, fields: dict[str, Any], contact_name: str = "") -> tuple[str, str]:
    """(body, drafted_by): the analysis' suggested text, else the tenant's
    ``followup_text`` or the default, with ``{name}``, ``{company}`` and ``{objection}``
    replaced (replace, not format: a tenant's text may hold any braces)."""
    suggested = str(fields.get(ANALYZER_TEXT) or "").strip()
    if suggested:
        # Whatever the model wrote, the text says who sends it and how to opt out.
        if company.name.lower() not in suggested.lower():
            suggested = f"{company.name}: {suggested}"
        if "STOP" not in suggested.upper():
            suggested += OPT_OUT
        return suggested, FollowUp.DraftedBy.ANALYZER
    name = (str(fields.get("customer_name") or "").strip() or contact_name.strip()).split(" ")[0]
    concern = objection(fields)
    template = company.followup_text.strip() or (
        DEFAULT_TEXT_OBJECTION if concern else DEFAULT_TEXT
    )
    body = (
        template.replace("{name}", name or "there")
        .replace("{company}", company.name)
        .replace("{objection}", concern or OBJECTIONS["other"])
    )
    return body, FollowUp.DraftedBy.TEMPLATE


def _zone(company: Company) -> ZoneInfo:
    try:
        return ZoneInfo(company.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _span(company: Company, day: datetime.date) -> tuple[datetime.time, datetime.time] | None:
    hours = company.business_hours if isinstance(company.business_hours, dict) else {}
    span = hours.get(WEEKDAYS[day.weekday()]) or []
    try:
        opens, closes = (datetime.time.fromisoformat(value) for value in span)
    except (TypeError, ValueError):
        # A day the admin's JSON gives no readable [open, close] for is closed: a typo
        # there must not fail every call's outcomes.
        return None
    return (opens, closes) if opens < closes else None


def next_business_time(company: Company, after: datetime.datetime) -> datetime.datetime | None:
    """``after`` if the tenant is open then, else when it next opens (UTC); None when the
    tenant has no business hours at all."""
    zone = _zone(company)
    local = after.astimezone(zone)
    for ahead in range(8):
        day = local.date() + datetime.timedelta(days=ahead)
        span = _span(company, day)
        if span is None:
            continue
        opens = datetime.datetime.combine(day, span[0], tzinfo=zone)
        closes = datetime.datetime.combine(day, span[1], tzinfo=zone)
        if local < closes:
            return max(local, opens).astimezone(datetime.UTC)
    return None


def send_time(
    company: Company, phone: str, after: datetime.datetime, contact_state: str = ""
) -> datetime.datetime:
    """The first instant from ``after`` inside both the tenant's business hours and the
    gate's window for ``phone``. A tenant with no business hours: the gate's window only;
    hours that never meet the gate's: the next business opening (the gate defers it)."""
    moment = after
    for _ in range(16):
        opening = next_business_time(company, moment) or moment
        try:
            allowed = gate.next_window(company, phone, opening, contact_state)
        except gate.NoWindow:
            return opening
        if allowed is None:
            return opening
        moment = allowed
    return next_business_time(company, after) or after


def _call_ended(call: Call) -> datetime.datetime:
    started = call.started_at or call.created_at
    return started + datetime.timedelta(seconds=call.duration_seconds or 0)


def draft(
    call: Call, fields: dict[str, Any], now: datetime.datetime | None = None
) -> FollowUp | None:
    """The call's follow-up (a text, or an AI call), drafted once; None when the tenant
    has follow-ups off, the call has no contact or is history, the call has one already,
    or it is a missed call being recovered (its recovery is already following it up)."""
    now = now or timezone.now()
    company = call.company
    contact = call.contact
    if not company.followup_enabled or contact is None:
        return None
    if MissedCallRecovery.objects.filter(call=call).exists():
        logger.info("call %s is being recovered; no follow-up besides it", call.pk)
        return None
    if now - _call_ended(call) > TOO_OLD:
        logger.info("call %s is too old for a follow-up", call.pk)
        return None
    phone = contact.phone or call.customer_number
    body, drafted_by = draft_text(company, fields, contact.name)
    auto = company.followup_auto_send
    try:
        with transaction.atomic():
            return FollowUp.objects.create(
                company=company,
                call=call,
                contact=contact,
                phone=phone,
                # An AI call when the tenant chose them and the number consented.
                channel=voice.followup_channel(company, phone),
                status=Status.SCHEDULED if auto else Status.DRAFT,
                body=body,
                drafted_by=drafted_by,
                scheduled_for=send_time(
                    company, phone, max(now, _call_ended(call) + AFTER_CALL), contact.state
                ),
            )
    except IntegrityError:
        logger.info("call %s has its follow-up already", call.pk)
        return None


def on_applied(call: Call) -> None:
    """The ``applied`` hand-off: draft or cancel follow-ups from the call's current
    analysis, then move the call to ``done`` (inside appointments' transaction)."""
    analysis = current_analysis(call.company, call)
    fields = effective_fields(analysis) if analysis is not None else {}
    reason = "no follow-ups needed"
    if call.contact_id is not None and fields.get("booking_status") == "booked":
        # A booking ends the follow-ups of this call and of the contact's earlier calls.
        started = call.started_at or call.created_at
        services.stop_followups(
            call.company,
            BOOKED.format(call=call.pk),
            contact_id=call.contact_id,
            call__started_at__lte=started,
        )
    elif wanted(fields):
        made = draft(call, fields)
        reason = "follow-up drafted" if made is not None else reason
    elif analysis is not None:
        services.stop_followups(
            call.company, NOT_WANTED.format(version=analysis.version), call=call
        )
    stages.move(Call.objects.filter(stage=Call.Stage.APPLIED), call, Call.Stage.DONE, reason=reason)


# --- people's decisions --------------------------------------------------------------------


def _reload(followup: FollowUp) -> FollowUp:
    followup.refresh_from_db()
    return followup


def approve(
    company: Company,
    followup: FollowUp,
    *,
    actor: User | None,
    now: datetime.datetime | None = None,
) -> FollowUp:
    """A draft is approved and goes at its ``scheduled_for`` (or the next business
    minute, when that has passed)."""
    now = now or timezone.now()
    due = followup.scheduled_for
    if due is None or due < now:
        due = send_time(company, followup.phone, now, followup.contact.state)
    approved = FollowUp.objects.filter(pk=followup.pk, company=company, status=Status.DRAFT).update(
        status=Status.APPROVED, approved_by=actor, approved_at=now, scheduled_for=due
    )
    if not approved:
        raise IllegalTransition(_reload(followup), "approved")
    return _reload(followup)


def edit(
    company: Company,
    followup: FollowUp,
    *,
    body: str | None = None,
    scheduled_for: datetime.datetime | None = None,
) -> FollowUp:
    """Change a draft's text or time (a person's text then)."""
    changes: dict[str, Any] = {}
    if body is not None:
        changes.update(body=body, drafted_by=FollowUp.DraftedBy.PERSON)
    if scheduled_for is not None:
        changes["scheduled_for"] = scheduled_for
    rows = FollowUp.objects.filter(pk=followup.pk, company=company, status=Status.DRAFT)
    done = rows.update(**changes) if changes else rows.exists()
    if not done:
        raise IllegalTransition(_reload(followup), "edited")
    return _reload(followup)


def cancel(company: Company, followup: FollowUp, *, actor: User | None) -> FollowUp:
    """A person cancels a pending follow-up (its deferred text is not sent)."""
    who = (actor.name or actor.get_username()) if actor is not None else ""
    reason = f"cancelled by {who}" if who else "cancelled by a person"
    if not services.stop_followups(company, reason, pk=followup.pk):
        raise IllegalTransition(_reload(followup), "cancelled")
    return _reload(followup)


# --- sending -------------------------------------------------------------------------------


def _set(followup: FollowUp, status: str, **changes: Any) -> str:
    FollowUp.objects.filter(pk=followup.pk).update(status=status, **changes)
    return status


def _send_sms(followup: FollowUp, now: datetime.datetime) -> str:
    company = followup.company
    thread, _ = Thread.objects.get_or_create(
        company=company, contact=followup.contact, defaults={"phone": followup.phone}
    )
    try:
        message = services.send_message(
            company, thread, body=followup.body, kind=Message.Kind.FOLLOWUP, now=now
        )
    except services.SendRefused as refused:
        return _set(
            followup, Status.BLOCKED, message=refused.message, status_reason=refused.decision.reason
        )
    if message.status == Message.Status.SCHEDULED:
        # Quiet hours: the message waits for the gate's time and dispatch-due-messages.
        return _set(
            followup,
            Status.SCHEDULED,
            message=message,
            scheduled_for=message.scheduled_for,
            status_reason=message.status_reason,
        )
    return _set(followup, Status.SENT, message=message, status_reason="")


# Each channel's sender: called inside the claim's transaction with the follow-up claimed
# (status ``sent``); it writes the status it ends in and returns it, and calls no provider
# (a provider call is enqueued, on commit). ``ai_call`` is Bland's (messaging.voice).
Sender = Callable[[FollowUp, datetime.datetime], str]
SENDERS: dict[str, Sender] = {
    FollowUp.Channel.SMS: _send_sms,
    FollowUp.Channel.AI_CALL: voice.send_followup,
}


def run_due(followup_id: int, now: datetime.datetime | None = None) -> str | None:
    """Send one due follow-up, once; the status it ends in, or None when not ours (not
    due, cancelled meanwhile, or claimed by another worker)."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = FollowUp.objects.filter(
            pk=followup_id, status__in=DUE, message__isnull=True, scheduled_for__lte=now
        ).update(status=Status.SENT, claimed_at=now)
        if not claimed:
            return None
        followup = FollowUp.objects.select_related("company", "contact").get(pk=followup_id)
        sender = SENDERS.get(followup.channel)
        if sender is None:
            return _set(followup, Status.FAILED, status_reason=f"no {followup.channel} sender")
        return sender(followup, now)


# --- the message's side (messaging.sending) ------------------------------------------------


def check_before_send(message_id: int) -> str:
    """At Twilio time: why a follow-up's message must not go (the follow-up was
    cancelled while the message waited for its window), or ``""``."""
    cancelled = FollowUp.objects.filter(message_id=message_id, status=Status.CANCELLED).first()
    return f"follow-up cancelled: {cancelled.status_reason}" if cancelled is not None else ""


def message_moved(message_id: int) -> None:
    """Mirror a follow-up's message onto the follow-up after a delivery attempt: handed
    to Twilio → ``sent``; refused at send time → ``blocked``; Twilio refused it →
    ``failed``; deferred again → ``scheduled`` for the gate's new time."""
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        return
    rows = FollowUp.objects.filter(message_id=message_id).exclude(status=Status.CANCELLED)
    moved = {
        Message.Status.SENDING: Status.SENT,
        Message.Status.SENT: Status.SENT,
        Message.Status.DELIVERED: Status.SENT,
        Message.Status.BLOCKED: Status.BLOCKED,
        Message.Status.FAILED: Status.FAILED,
    }.get(Message.Status(message.status))
    if moved is not None:
        reason = "" if moved == Status.SENT else message.status_reason
        rows.update(status=moved, status_reason=reason)
    elif message.status == Message.Status.SCHEDULED:
        rows.update(status=Status.SCHEDULED, scheduled_for=message.scheduled_for)
