"""Auto-replies: HELP gets the tenant's help text, a free-text opt-out one confirmation; both
through the gate, once per inbound message."""

from __future__ import annotations

import datetime
from urllib.parse import parse_qsl

import pytest
import time_machine
from django.db import IntegrityError, transaction

from messaging import gate, sending
from messaging.models import ConsentEvent, Message
from messaging.services import SendRefused, receive_message, send_message
from tests.messaging.conftest import (
    ACME_NUMBER,
    CUSTOMER,
    INBOUND,
    inbound_params,
    post_signed,
    process_received,
    text_in,
)

Status = Message.Status
AUTO_REPLY = Message.Kind.AUTO_REPLY
NOON_NY = datetime.datetime(2026, 3, 10, 17, 0, tzinfo=datetime.UTC)
LATE_NY = datetime.datetime(2026, 3, 11, 3, 30, tzinfo=datetime.UTC)  # 22:30 in New York


def _replies() -> list[Message]:
    return list(Message.objects.filter(kind=AUTO_REPLY).order_by("pk"))


def _sent_bodies(sandbox) -> list[str]:
    return [dict(parse_qsl(r["body"]))["Body"] for r in sandbox.recorded("twilio.messages.create")]


@time_machine.travel(NOON_NY, tick=False)
def test_help_is_answered_with_the_default_naming_the_company_on_followups(
    acme_sms, twilio, pushed
):
    text_in("HELP")

    [reply] = _replies()
    inbound = Message.objects.get(direction="inbound")
    assert (reply.status, reply.reply_to, reply.to_number) == (Status.QUEUED, inbound, CUSTOMER)
    assert "Acme Heating" in reply.body and "Reply STOP to opt out" in reply.body
    assert pushed == [("followups", (reply.pk,))]
    assert ConsentEvent.objects.get().action == "help"

    # and the send task delivers it through Twilio
    assert sending.deliver(reply.pk, now=NOON_NY) == Status.SENDING
    assert _sent_bodies(twilio) == [reply.body]


@time_machine.travel(NOON_NY, tick=False)
def test_help_is_answered_with_the_tenants_own_text(acme_sms, pushed):
    acme_sms.sms_help_reply = "Acme Heating: call (212) 555-0100, 8-6. Reply STOP to opt out."
    acme_sms.save(update_fields=["sms_help_reply"])

    text_in("help")

    assert [reply.body for reply in _replies()] == [acme_sms.sms_help_reply]


def test_a_manager_sets_the_help_text_through_company(acme_sms, acme_manager):
    text = "Acme: call us at (212) 555-0100. Reply STOP to opt out."

    response = acme_manager.client().patch("/api/v1/company/", {"sms_help_reply": text})

    assert response.status_code == 200 and response.json()["sms_help_reply"] == text
    acme_sms.refresh_from_db()
    assert acme_sms.sms_help_reply == text


@time_machine.travel(NOON_NY, tick=False)
def test_a_redelivered_or_replayed_help_is_answered_once(acme_sms, pushed):
    params = inbound_params("HELP")
    for _ in range(2):  # Twilio retries the delivery
        assert post_signed(INBOUND, params).status_code == 200
    process_received()
    # an ops replay runs the handler on the same message again
    receive_message(
        acme_sms,
        sid=params["MessageSid"],
        from_number=CUSTOMER,
        to_number=ACME_NUMBER,
        body="HELP",
        media=[],
    )

    [reply] = _replies()
    assert len(pushed) == 1
    # and the constraint, not the code path, is what holds it
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(
            company=acme_sms,
            thread=reply.thread,
            direction="outbound",
            status=Status.QUEUED,
            kind=AUTO_REPLY,
            reply_to=reply.reply_to,
        )


@time_machine.travel(LATE_NY, tick=False)
def test_help_at_2230_new_york_time_is_answered_at_once(acme_sms, pushed):
    text_in("HELP")

    [reply] = _replies()
    assert reply.status == Status.QUEUED and reply.scheduled_for is None
    assert len(pushed) == 1


def test_an_auto_reply_with_no_recent_text_waits_for_the_window(acme):
    # The reply exception needs the person to have written within 24 hours.
    long_ago = LATE_NY - datetime.timedelta(hours=25)

    decision = gate.check_send(
        acme, to=CUSTOMER, kind=AUTO_REPLY, now=LATE_NY, last_inbound_at=long_ago
    )

    assert decision.deferred and decision.send_at == datetime.datetime(
        2026, 3, 11, 12, 0, tzinfo=datetime.UTC
    )


@time_machine.travel(NOON_NY, tick=False)
def test_help_from_a_number_that_opted_out_is_stored_blocked_not_sent(acme_sms, pushed):
    text_in("STOP", sid="SM" + "1" * 32)
    text_in("HELP", sid="SM" + "2" * 32)

    [reply] = _replies()
    assert (reply.status, reply.status_reason) == (Status.BLOCKED, "recipient_opted_out")
    assert pushed == []


@time_machine.travel(NOON_NY, tick=False)
def test_a_keyword_stop_gets_no_reply_from_otto(acme_sms, pushed):
    # Twilio's own keyword handling confirms it, and refuses anything after (21610).
    text_in("STOP")

    assert _replies() == [] and pushed == []


@time_machine.travel(NOON_NY, tick=False)
def test_a_free_text_opt_out_gets_one_confirmation_and_nothing_after(acme_sms, twilio, pushed):
    text_in("please stop texting me")

    [confirmation] = _replies()
    assert confirmation.status == Status.QUEUED and "unsubscribed" in confirmation.body
    # the gate lets it through again when the task sends it
    assert sending.deliver(confirmation.pk, now=NOON_NY) == Status.SENDING
    assert _sent_bodies(twilio) == [confirmation.body]

    # and then nothing, manual or automated, goes to that number
    with pytest.raises(SendRefused):
        send_message(acme_sms, confirmation.thread, body="One more thing", now=NOON_NY)
    with pytest.raises(SendRefused):
        send_message(acme_sms, confirmation.thread, body="Hi", kind="followup", now=NOON_NY)
    assert len(_sent_bodies(twilio)) == 1


@time_machine.travel(NOON_NY, tick=False)
def test_only_the_reply_to_the_opting_out_text_passes_the_opt_out(acme_sms, pushed):
    text_in("Is Tuesday OK?", sid="SM" + "1" * 32)
    text_in("remove me from your list", sid="SM" + "2" * 32)
    earlier = Message.objects.get(body="Is Tuesday OK?")
    opting_out = Message.objects.get(body="remove me from your list")

    def decide(reply_to: int) -> gate.Decision:
        return gate.check_send(
            acme_sms, to=CUSTOMER, kind=AUTO_REPLY, now=NOON_NY, reply_to=reply_to
        )

    assert decide(opting_out.pk).allowed
    assert decide(earlier.pk).reason == "recipient_opted_out"
    # a manual message that claims to answer it is still refused
    manual = gate.check_send(
        acme_sms, to=CUSTOMER, kind="manual", now=NOON_NY, reply_to=opting_out.pk
    )
    assert manual.reason == "recipient_opted_out"
