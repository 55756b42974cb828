"""Rows of every kind the retention purge touches, aged by a number of days, and the
objects in storage (S3 on moto's server, tests/conftest.py)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from analysis.models import CallAnalysis
from calls import search
from calls.models import Call, Transcript
from integrations.models import WebhookEvent
from messaging.models import AiCall, Message, Thread
from otto.models import Company
from tests.api.factories import CallFactory, ContactFactory
from tests.calls_api.conftest import store_recording

DAY = timedelta(days=1)
SAID = "the boiler in the basement is leaking"


def ago(days: float):
    return timezone.now() - days * DAY


def set_windows(company: Company, **days: int | None) -> Company:
    """``set_windows(acme, recordings=30)`` sets ``retention_recordings_days``."""
    for kind, value in days.items():
        setattr(company, f"retention_{kind}_days", value)
    company.save()
    return company


def aged_call(company: Company, days: float, *, stage: str = Call.Stage.DONE) -> Call:
    """A call started ``days`` ago with its audio in storage."""
    call = CallFactory(
        company=company,
        contact=ContactFactory(company=company),
        started_at=ago(days),
        stage=stage,
    )
    return store_recording(call)


def transcribe(call: Call) -> Transcript:
    """A transcript and an analysis quoting it, and the call indexed for search."""
    transcript = Transcript.objects.create(
        company=call.company,
        call=call,
        text=SAID,
        utterances=[{"speaker": 1, "role": "customer", "start": 0, "end": 3, "text": SAID}],
        word_count=7,
        provider="deepgram",
    )
    CallAnalysis.objects.create(
        company=call.company,
        call=call,
        version=1,
        analyzer="openai",
        prompt_version="v1",
        summary="A leaking boiler; booked.",
        lead_quality="hot",
        booking_status="booked",
        objections=[{"category": "price", "quote": SAID, "utterance": 0, "resolved": True}],
    )
    search.index_call(call.pk)
    return transcript


def webhook_event(company: Company | None, days: float, status: str) -> WebhookEvent:
    event = WebhookEvent.objects.create(
        provider="callrail",
        company=company,
        dedupe_key=f"{status}-{days}-{WebhookEvent.objects.count()}",
        event_type="post_call",
        headers={"signature": "abc"},
        body='{"customer_name": "Pat Caller"}',
        status=status,
    )
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=ago(days))
    return event


def text_message(
    company: Company,
    days: float,
    *,
    status: str = Message.Status.DELIVERED,
    body: str = "Can you come Tuesday?",
) -> Message:
    contact = ContactFactory(company=company)
    thread = Thread.objects.create(
        company=company,
        contact=contact,
        phone=contact.phone,
        last_message_at=ago(days),
        last_message_preview=body,
    )
    message = Message.objects.create(
        company=company,
        thread=thread,
        direction=Message.Direction.INBOUND,
        status=status,
        from_number=contact.phone,
        to_number="+13035550100",
        body=body,
        media=["https://api.twilio.com/media/ME1"],
    )
    Message.objects.filter(pk=message.pk).update(created_at=ago(days))
    return message


def stored_keys(s3) -> list[str]:
    listed = s3.list_objects_v2(Bucket=s3.bucket)
    return sorted(obj["Key"] for obj in listed.get("Contents", []))


def ai_call(company: Company, days: float) -> AiCall:
    """An AI follow-up call that ended ``days`` ago, with its transcript and summary."""
    contact = ContactFactory(company=company)
    return AiCall.objects.create(
        company=company,
        contact=contact,
        phone=contact.phone,
        status=AiCall.Status.COMPLETED,
        outcome="completed",
        summary="Booked a visit for Tuesday",
        transcript="user: Tuesday at nine works",
        completed_at=ago(days),
    )
