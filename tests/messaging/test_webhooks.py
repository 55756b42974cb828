"""POST /sms/twilio-webhook and /sms/twilio-status: signed, stored once, tenant by number."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
from django.test import Client

from integrations.models import Provider, WebhookEvent
from messaging.models import ConsentEvent, Message, Thread
from otto.models import Contact
from tests.messaging.conftest import (
    ACME_NUMBER,
    CUSTOMER,
    INBOUND,
    PUBLIC,
    STATUS,
    inbound_params,
    post_signed,
    process_received,
)

Status = WebhookEvent.Status
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def test_a_signed_inbound_sms_threads_to_a_new_contact_and_answers_empty_twiml(acme_sms):
    response = post_signed(INBOUND, inbound_params("Is Tuesday OK?"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert response.content == EMPTY_TWIML
    event = WebhookEvent.objects.get(provider=Provider.TWILIO)
    assert event.company == acme_sms and event.status == Status.RECEIVED
    assert process_received() == [Status.PROCESSED]
    contact = Contact.objects.get(company=acme_sms, phone=CUSTOMER)
    thread = Thread.objects.get(company=acme_sms, contact=contact)
    message = thread.messages.get()
    assert (message.direction, message.status, message.body) == (
        "inbound",
        "received",
        "Is Tuesday OK?",
    )
    assert (message.from_number, message.to_number) == (CUSTOMER, ACME_NUMBER)
    assert thread.unread == 1 and thread.last_message_preview == "Is Tuesday OK?"
    assert thread.last_inbound_at is not None


def test_a_second_text_from_the_same_contact_joins_the_thread(acme_sms):
    post_signed(INBOUND, inbound_params("one", sid="SM" + "1" * 32))
    post_signed(INBOUND, inbound_params("two", sid="SM" + "2" * 32))
    process_received()

    thread = Thread.objects.get(company=acme_sms)
    assert thread.messages.count() == 2 and thread.unread == 2


def test_mms_media_urls_are_kept(acme_sms):
    params = inbound_params(
        "photo of the leak",
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/media/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/media/ME2",
        MediaContentType1="image/png",
    )
    post_signed(INBOUND, params)
    process_received()

    assert Message.objects.get().media == [
        {"url": "https://api.twilio.com/media/ME1", "content_type": "image/jpeg"},
        {"url": "https://api.twilio.com/media/ME2", "content_type": "image/png"},
    ]


def test_a_duplicate_delivery_is_stored_and_processed_once(acme_sms):
    first = post_signed(INBOUND, inbound_params("hello"))
    second = post_signed(INBOUND, inbound_params("hello"))
    process_received()

    assert first.status_code == second.status_code == 200
    assert WebhookEvent.objects.filter(provider=Provider.TWILIO).count() == 1
    assert Message.objects.count() == 1


def test_a_bad_signature_is_401_and_stores_nothing(acme_sms):
    response = post_signed(INBOUND, inbound_params(), token="not-the-auth-token")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()


def test_a_signature_for_another_url_is_401(acme_sms):
    response = post_signed(INBOUND, inbound_params(), url="https://otto.example.com/elsewhere")

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_an_unsigned_request_is_401(acme_sms):
    response = Client().post(
        INBOUND, data=urlencode(inbound_params()), content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_a_json_body_is_refused_and_nothing_stored(acme_sms):
    response = Client().post(INBOUND, data=inbound_params(), content_type="application/json")

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_a_number_no_tenant_sends_from_is_stored_unmatched_and_answered_401(acme_sms):
    response = post_signed(INBOUND, inbound_params(To="+13035550199"))

    assert response.status_code == 401
    event = WebhookEvent.objects.get()
    assert event.status == Status.UNMATCHED and event.company is None
    assert not Message.objects.exists() and not Contact.objects.exists()


def test_another_tenants_number_threads_there_not_at_acme(acme_sms, globex):
    from otto.models import PhoneNumber

    PhoneNumber.objects.create(company=globex, number="+15005550009", kind="sending")
    post_signed(INBOUND, inbound_params(To="+15005550009"))
    process_received()

    assert Thread.objects.get().company == globex
    assert not Thread.objects.filter(company=acme_sms).exists()


def test_the_sandbox_delivers_an_inbound_sms_the_app_accepts(acme_sms, twilio, outbox):
    # given the SDK-side signer in the sandbox, delivering to the app's public URL
    response = httpx.post(
        f"{twilio.url}/_sandbox/twilio/sms",
        json={"from": CUSTOMER, "to": ACME_NUMBER, "body": "STOP", "url": PUBLIC + INBOUND},
        timeout=5,
    )
    assert response.status_code == 201
    [delivery] = outbox.to(INBOUND)

    # when the app receives exactly those bytes and headers
    received = Client().post(
        INBOUND,
        data=delivery.body,
        content_type=delivery.headers["Content-Type"],
        headers={"X-Twilio-Signature": delivery.headers["X-Twilio-Signature"]},
    )
    process_received()

    # then it is verified, threaded, and the STOP is in the ledger
    assert received.status_code == 200
    assert ConsentEvent.objects.get().action == "opt_out"


def _status(sid: str, status: str, **extra: str) -> dict:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": ACME_NUMBER,
        "To": CUSTOMER,
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def _sent(thread, sid: str) -> Message:
    return Message.objects.create(
        company=thread.company,
        thread=thread,
        direction="outbound",
        body="On our way",
        status=Message.Status.SENT,
        from_number=ACME_NUMBER,
        to_number=CUSTOMER,
        kind="manual",
        twilio_sid=sid,
    )


def test_out_of_order_statuses_never_move_backwards(acme_thread):
    message = _sent(acme_thread, "SM" + "b" * 32)

    for status in ("delivered", "sent", "sending"):
        assert post_signed(STATUS, _status(message.twilio_sid, status)).status_code == 200
    process_received()

    message.refresh_from_db()
    assert message.status == "delivered"
    assert WebhookEvent.objects.filter(provider=Provider.TWILIO).count() == 3


def test_failed_keeps_its_error_code_and_is_terminal(acme_thread):
    message = _sent(acme_thread, "SM" + "c" * 32)

    post_signed(STATUS, _status(message.twilio_sid, "failed", ErrorCode="30003"))
    post_signed(STATUS, _status(message.twilio_sid, "delivered"))
    process_received()

    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", "30003")
    assert not ConsentEvent.objects.exists()


def test_error_21610_records_a_carrier_opt_out(acme_thread):
    message = _sent(acme_thread, "SM" + "d" * 32)

    post_signed(STATUS, _status(message.twilio_sid, "undelivered", ErrorCode="21610"))
    process_received()

    event = ConsentEvent.objects.get()
    assert (event.phone, event.action, event.source) == (CUSTOMER, "opt_out", "carrier_error")
    assert event.message == message


def test_a_status_for_another_tenants_message_changes_nothing(acme_thread, globex):
    from otto.models import PhoneNumber

    message = _sent(acme_thread, "SM" + "e" * 32)
    PhoneNumber.objects.create(company=globex, number="+15005550009", kind="sending")

    post_signed(STATUS, _status(message.twilio_sid, "failed", From="+15005550009", ErrorCode="1"))
    # Waits for a SID that may not be recorded yet, then gives up; never touches Acme's row.
    assert process_received() == [Status.RECEIVED]
    assert process_received() == [Status.RECEIVED]
    assert process_received() == [Status.IGNORED]

    message.refresh_from_db()
    assert message.status == "sent" and message.error_code == ""


def test_a_delivered_callback_is_deduped_by_sid_and_status(acme_thread):
    message = _sent(acme_thread, "SM" + "f" * 32)

    post_signed(STATUS, _status(message.twilio_sid, "delivered"))
    post_signed(STATUS, _status(message.twilio_sid, "delivered"))

    assert WebhookEvent.objects.filter(provider=Provider.TWILIO).count() == 1


def test_a_callback_that_beats_the_sid_is_applied_when_run_again(acme_thread):
    # given a callback for a send whose task has not recorded the SID yet
    sid = "SM" + "9" * 32
    post_signed(STATUS, _status(sid, "delivered"))
    assert process_received() == [Status.RECEIVED]

    # when the send records it and the reaper runs the event again
    message = _sent(acme_thread, sid)
    assert process_received() == [Status.PROCESSED]

    # then the status is applied
    message.refresh_from_db()
    assert message.status == "delivered"
