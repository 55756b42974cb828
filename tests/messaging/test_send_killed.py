"""A real qcluster worker SIGKILLed after Twilio accepted a text: the text goes out once.

The in-process version (the retry finding the accepted message) is in test_sending.py.
"""

from __future__ import annotations

import datetime
import os
import signal

import pytest
from django.utils import timezone

from messaging import sending, tasks
from messaging.models import Message, Thread
from messaging.services import ensure_thread, send_message
from otto.models import PhoneNumber
from tests.conftest import wait_for
from tests.messaging.conftest import ACME_NUMBER, CUSTOMER

Status = Message.Status


def _accepted(sandbox) -> list[dict]:
    """The outbound messages the sandbox's Twilio holds (what reached the carrier)."""
    with sandbox.lock:
        messages = sandbox.state["twilio"].get("messages", {}).values()
        return [m for m in messages if m["direction"] == "outbound-api"]


@pytest.fixture
def thread(acme) -> Thread:
    PhoneNumber.objects.create(company=acme, number=ACME_NUMBER, kind=PhoneNumber.Kind.SENDING)
    acme.twilio_number = ACME_NUMBER
    acme.save(update_fields=["twilio_number"])
    thread = ensure_thread(acme, CUSTOMER)
    # The customer just wrote: a manual reply may go at any hour the suite runs.
    Thread.objects.filter(pk=thread.pk).update(last_inbound_at=timezone.now())
    thread.refresh_from_db()
    return thread


@pytest.mark.cluster
def test_a_worker_killed_after_twilio_accepted_sends_the_text_once(thread, sandbox, start_qcluster):
    # given a real cluster, and a Twilio that accepts the send but holds its answer
    sandbox.inject("twilio.messages.create", "hold", count=1, delay_seconds=60)
    first = start_qcluster(SANDBOX_URL=sandbox.url)
    message = send_message(thread.company, thread, body="Your tech is 10 minutes out")

    # when the worker is killed while Twilio holds the answer to the message it accepted
    [accepted] = wait_for(lambda: _accepted(sandbox), timeout=30)
    stored = Message.objects.get(pk=message.pk)
    assert (stored.status, stored.twilio_sid) == (Status.SENDING, None)
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait()

    # and the dispatcher finds the dead worker's claim (its deadline, two minutes, passed)
    stale = timezone.now() - sending.SEND_DEADLINE - datetime.timedelta(seconds=1)
    Message.objects.filter(pk=message.pk).update(claimed_at=stale)
    second = start_qcluster(SANDBOX_URL=sandbox.url)
    assert tasks.dispatch_due_messages() == 1

    # then the new worker records the message Twilio accepted instead of sending it again
    try:
        done = wait_for(
            lambda: Message.objects.filter(pk=message.pk, twilio_sid__isnull=False).first(),
            # (generous: on a loaded 2-core machine a fresh cluster takes a while to start)
            timeout=60,
        )
    except TimeoutError:
        pytest.fail(f"{Message.objects.get(pk=message.pk).__dict__}\n{second.output()}")
    assert done.twilio_sid == accepted["sid"]
    assert done.status in (Status.SENT, Status.DELIVERED)
    assert done.attempts == 2
    assert len(sandbox.recorded("twilio.messages.create")) == 1
    assert len(_accepted(sandbox)) == 1
