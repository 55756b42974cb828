"""Delivering an outbound message through Twilio, exactly once.

No network call inside a transaction (STYLE.md): the message is claimed with a
compare-and-set (``queued``/due ``scheduled`` → ``sending``, ``claimed_at`` written before
Twilio is called), committed, sent, and the SID recorded by another update.

A worker killed after Twilio accepted the message leaves it ``sending`` without a SID.
The claim it wrote is the key a retry checks: any message that was claimed before is first
looked for in Twilio's list of messages to that number since that claim (same sender, same
body), and recorded instead of being sent again. The cost is that the same body to the same
number within that window is taken for this message: a duplicate text is worse than a
missing one.
"""

from __future__ import annotations

import datetime
import logging

from django.db.models import F, Q
from django.utils import timezone

from integrations.errors import ProviderError
from integrations.twilio.client import SmsMessage, TwilioClient, TwilioError
from messaging import followups, gate, kpi_marks, recovery, services
from messaging.models import Message

logger = logging.getLogger(__name__)

Status = Message.Status
# Past any send's timeout: a claim this old lost its worker.
SEND_DEADLINE = datetime.timedelta(minutes=2)
MAX_ATTEMPTS = 6
CLOCK_SKEW = datetime.timedelta(minutes=1)


def backoff(attempts: int, retry_after: float | None) -> datetime.timedelta:
    seconds = max(retry_after or 0.0, 30.0 * 2 ** max(attempts - 1, 0))
    return datetime.timedelta(seconds=min(seconds, 3600))


def claim(message_id: int, now: datetime.datetime) -> Message | None:
    claimable = Q(status=Status.QUEUED) | Q(status=Status.SCHEDULED, next_attempt_at__lte=now)
    stale = Q(status=Status.SENDING, twilio_sid__isnull=True, claimed_at__lt=now - SEND_DEADLINE)
    before = Message.objects.filter(pk=message_id).values_list("claimed_at", flat=True).first()
    claimed = (
        Message.objects.filter(pk=message_id)
        .filter(claimable | stale)
        .update(status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    message = Message.objects.select_related("company", "thread__contact").get(pk=message_id)
    # The previous claim, if any: where a retry starts looking for an accepted send.
    message.previous_claim = before  # type: ignore[attr-defined]
    return message


def _already_accepted(
    client: TwilioClient, message: Message, since: datetime.datetime
) -> SmsMessage | None:
    for sent in client.list_messages(
        to=message.to_number, from_=message.from_number, created_after=since - CLOCK_SKEW
    ):
        if sent.body == message.body:
            return sent
    return None


def _recorded(twilio_status: str) -> str:
    """Our status for what Twilio reports. Accepted but not yet handed to the carrier
    (Twilio's queued, accepted, sending) stays ``sending``, now with its SID, so nothing
    sends it again and the callbacks move it on."""
    if twilio_status in (Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.FAILED):
        return twilio_status
    return Status.SENDING


def deliver(message_id: int, now: datetime.datetime | None = None) -> str | None:
    """Send one claimed message; its resulting status, or None when not ours to send."""
    now = now or timezone.now()
    message = claim(message_id, now)
    if message is None:
        return None
    status = _deliver(message, now)
    if message.kind == Message.Kind.FOLLOWUP:
        followups.message_moved(message.pk)
    return status


def _deliver(message: Message, now: datetime.datetime) -> str:
    if message.kind == Message.Kind.FOLLOWUP:
        # The follow-up was cancelled (a reply, a booking) while the text waited.
        cancelled = followups.check_before_send(message.pk)
        if cancelled:
            return _finish(message, Status.BLOCKED, status_reason=cancelled)
    if message.recovery_id is not None:
        # A reply, an answered call or a person's text since the step was claimed.
        stopped = recovery.check_before_send(message.recovery_id)
        if stopped:
            return _finish(message, Status.BLOCKED, status_reason=stopped)
    decision = gate.check_send(
        message.company,
        to=message.to_number,
        kind=message.kind,
        now=now,
        last_inbound_at=message.thread.last_inbound_at,
        contact_state=message.thread.contact.state,
        reply_to=message.reply_to_id,
    )
    # An opt-out may have arrived since the message was queued; a deferred one re-checks
    # its window. A manual message was allowed when a person sent it.
    if decision.reason == gate.OPTED_OUT:
        return _finish(message, Status.BLOCKED, status_reason=decision.reason)
    if decision.deferred:
        return _finish(
            message,
            Status.SCHEDULED,
            scheduled_for=decision.send_at,
            next_attempt_at=decision.send_at,
        )
    if not decision.allowed and message.kind != Message.Kind.MANUAL:
        # No window at all (gate.NoWindow): automation waits for nobody.
        return _finish(message, Status.BLOCKED, status_reason=decision.reason)
    try:
        client = TwilioClient.from_settings()
        previous = getattr(message, "previous_claim", None)
        accepted = _already_accepted(client, message, previous) if previous else None
        if accepted is not None:
            logger.info(
                "message %s was accepted by Twilio as %s before; not resent",
                message.pk,
                accepted.sid,
            )
            return _finish(message, _recorded(accepted.status), twilio_sid=accepted.sid)
        sent = client.send_sms(message.to_number, message.body, from_=message.from_number or None)
    except ProviderError as exc:
        return _failed(message, exc, now)
    return _finish(message, _recorded(sent.status), twilio_sid=sent.sid)


def _failed(message: Message, exc: ProviderError, now: datetime.datetime) -> str:
    code = str(getattr(exc, "code", "") or "") if isinstance(exc, TwilioError) else ""
    if exc.permanent or message.attempts >= MAX_ATTEMPTS:
        result = _finish(message, Status.FAILED, error_code=code, status_reason=exc.detail[:255])
        if code == services.OPTED_OUT_AT_CARRIER:
            services.record_status(message, Status.FAILED, code)
        return result
    logger.warning("message %s: transient Twilio failure, retrying: %s", message.pk, exc)
    return _finish(
        message,
        Status.QUEUED,
        status_reason=exc.detail[:255],
        next_attempt_at=now + backoff(message.attempts, exc.retry_after),
    )


def _finish(message: Message, status: str, **changes: object) -> str:
    if Message.objects.filter(pk=message.pk, status=Status.SENDING).update(
        status=status, **changes
    ):
        kpi_marks.mark_message(message)
    return status
