"""Sending through Twilio (the sandbox): claim, send, record; backoff; exactly once."""

from __future__ import annotations

import datetime
from urllib.parse import parse_qsl

import pytest
from django.utils import timezone

from messaging import sending, tasks
from messaging.models import Message
from messaging.services import SendRefused, record_consent, send_message
from tests.messaging.conftest import CUSTOMER

Status = Message.Status
NOON_NY = datetime.datetime(2026, 3, 10, 17, 0, tzinfo=datetime.UTC)


def _queued(thread, body: str = "Your tech is on the way") -> Message:
    return send_message(thread.company, thread, body=body, now=NOON_NY)


def _creates(sandbox) -> list[dict]:
    return [dict(parse_qsl(r["body"])) for r in sandbox.recorded("twilio.messages.create")]


def test_a_queued_message_is_claimed_sent_and_its_sid_recorded(acme_thread, twilio):
    message = _queued(acme_thread)

    # Twilio answers "queued": accepted, not yet with the carrier; callbacks move it on.
    assert sending.deliver(message.pk, now=NOON_NY) == Status.SENDING

    message.refresh_from_db()
    assert message.twilio_sid.startswith("SM") and message.attempts == 1
    assert sending.deliver(message.pk, now=NOON_NY + sending.SEND_DEADLINE * 2) is None
    [sent] = _creates(twilio)
    assert (sent["To"], sent["Body"]) == (CUSTOMER, "Your tech is on the way")


def test_a_message_is_not_sent_twice_by_two_tasks(acme_thread, twilio):
    message = _queued(acme_thread)

    sending.deliver(message.pk, now=NOON_NY)
    assert sending.deliver(message.pk, now=NOON_NY) is None

    assert len(_creates(twilio)) == 1


def test_a_worker_killed_after_twilio_accepted_does_not_send_again(acme_thread, twilio):
    # given a send Twilio accepted, whose worker died before recording the SID
    message = _queued(acme_thread)
    claimed_at = timezone.now()
    Message.objects.filter(pk=message.pk).update(
        status=Status.SENDING, claimed_at=claimed_at, attempts=1
    )
    from integrations.twilio.client import TwilioClient

    accepted = TwilioClient.from_settings().send_sms(CUSTOMER, message.body)

    # when the dispatcher finds the stale claim and retries it
    later = claimed_at + sending.SEND_DEADLINE + datetime.timedelta(seconds=1)
    assert sending.deliver(message.pk, now=later) == Status.SENDING

    # then the accepted message is recorded, and Twilio got one create, not two
    message.refresh_from_db()
    assert message.twilio_sid == accepted.sid
    assert len(_creates(twilio)) == 1


def test_a_stale_claim_with_nothing_at_twilio_is_sent(acme_thread, twilio):
    message = _queued(acme_thread)
    claimed_at = timezone.now()
    Message.objects.filter(pk=message.pk).update(status=Status.SENDING, claimed_at=claimed_at)

    later = claimed_at + sending.SEND_DEADLINE + datetime.timedelta(seconds=1)
    assert sending.deliver(message.pk, now=later) == Status.SENDING
    assert len(_creates(twilio)) == 1


def test_a_fresh_claim_is_left_to_its_worker(acme_thread, twilio):
    message = _queued(acme_thread)
    Message.objects.filter(pk=message.pk).update(status=Status.SENDING, claimed_at=timezone.now())

    assert sending.deliver(message.pk) is None
    assert _creates(twilio) == []


@pytest.mark.parametrize(("to", "code"), [("+15005550001", "21211"), ("+15005550004", "21610")])
def test_permanent_twilio_errors_fail_with_their_code_and_no_retry(acme_sms, twilio, to, code):
    from messaging.services import ensure_thread

    thread = ensure_thread(acme_sms, to)
    message = _queued(thread)

    assert sending.deliver(message.pk, now=NOON_NY) == Status.FAILED

    message.refresh_from_db()
    assert message.error_code == code and message.next_attempt_at == NOON_NY
    assert sending.deliver(message.pk, now=NOON_NY) is None


def test_21610_at_send_time_records_a_carrier_opt_out(acme_sms, twilio):
    from messaging import selectors
    from messaging.services import ensure_thread

    thread = ensure_thread(acme_sms, "+15005550004")
    sending.deliver(_queued(thread).pk, now=NOON_NY)

    assert selectors.is_opted_out(acme_sms, "+15005550004")


@pytest.mark.parametrize("mode", ["429", "500"])
def test_429_and_5xx_back_off_and_stay_queued(acme_thread, twilio, mode):
    # The client itself retries a 429 twice (Retry-After: 1); then the task backs off.
    twilio.inject("twilio.messages.create", mode, count=3)
    message = _queued(acme_thread)

    assert sending.deliver(message.pk, now=NOON_NY) == Status.QUEUED

    message.refresh_from_db()
    assert message.next_attempt_at > NOON_NY and message.error_code == ""


def test_an_opt_out_after_queueing_blocks_the_send(acme_thread, twilio):
    message = _queued(acme_thread)
    record_consent(acme_thread.company, phone=CUSTOMER, action="opt_out", source="keyword")

    assert sending.deliver(message.pk, now=NOON_NY) == Status.BLOCKED
    assert _creates(twilio) == []


def test_a_deferred_message_goes_out_once_when_its_window_opens(acme_thread, twilio):
    late = datetime.datetime(2026, 3, 11, 3, 30, tzinfo=datetime.UTC)  # 22:30 in New York
    message = send_message(
        acme_thread.company, acme_thread, body="Following up", kind="followup", now=late
    )
    assert message.status == Status.SCHEDULED
    assert message.scheduled_for == datetime.datetime(2026, 3, 11, 12, 0, tzinfo=datetime.UTC)

    assert sending.deliver(message.pk, now=late) is None  # not due yet
    opened = message.scheduled_for + datetime.timedelta(minutes=1)
    assert sending.deliver(message.pk, now=opened) == Status.SENDING
    assert sending.deliver(message.pk, now=opened) is None
    assert len(_creates(twilio)) == 1


def test_a_manual_send_to_an_opted_out_number_is_refused_and_stored_blocked(acme_thread, twilio):
    record_consent(acme_thread.company, phone=CUSTOMER, action="opt_out", source="keyword")

    with pytest.raises(SendRefused) as refused:
        _queued(acme_thread)

    assert refused.value.message.status == Status.BLOCKED
    assert refused.value.message.status_reason == "recipient_opted_out"


def test_the_dispatcher_enqueues_due_and_stale_messages(acme_thread, twilio, monkeypatch):
    due = _queued(acme_thread)
    stale = _queued(acme_thread, "second")
    Message.objects.filter(pk=stale.pk).update(
        status=Status.SENDING, claimed_at=timezone.now() - datetime.timedelta(hours=1)
    )
    pushed = []
    monkeypatch.setattr(tasks, "enqueue", lambda queue, func, *ids: pushed.append((queue, ids)))

    assert tasks.dispatch_due_messages() == 2
    assert sorted(ids[0] for _, ids in pushed) == sorted([due.pk, stale.pk])
    assert {queue for queue, _ in pushed} == {"followups"}


def test_automation_with_no_window_at_all_is_blocked_not_sent(acme_sms, twilio):
    from messaging.services import ensure_thread

    thread = ensure_thread(acme_sms, "+14015550100")  # Rhode Island: closes at 18:00
    message = _queued(thread)
    Message.objects.filter(pk=message.pk).update(kind="followup")
    acme_sms.quiet_hours_start = datetime.time(19)
    acme_sms.save(update_fields=["quiet_hours_start"])

    assert sending.deliver(message.pk, now=NOON_NY) == Status.BLOCKED
    assert _creates(twilio) == []
