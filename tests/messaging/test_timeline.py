"""Texts and consent changes on GET contacts/{id}/timeline/, among the contact's calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.models import Message
from messaging.services import ensure_thread, record_consent
from tests.api.factories import CallFactory
from tests.messaging.conftest import CUSTOMER, text_in

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _url(contact) -> str:
    return f"/api/v1/contacts/{contact.pk}/timeline/"


def _at(message: Message, when: datetime) -> None:
    Message.objects.filter(pk=message.pk).update(created_at=when)


@pytest.fixture
def dana_thread(acme_sms):
    return ensure_thread(acme_sms, CUSTOMER)


def _outbound(thread, body: str, when: datetime) -> Message:
    message = Message.objects.create(
        company=thread.company,
        thread=thread,
        direction="outbound",
        body=body,
        status="delivered",
        from_number=thread.company.twilio_number,
        to_number=thread.phone,
        kind="manual",
    )
    _at(message, when)
    return message


def test_texts_and_consent_appear_among_calls_newest_first(acme_sms, dana_thread, acme_csr):
    dana = dana_thread.contact
    call = CallFactory(company=acme_sms, contact=dana, started_at=T0)
    reply = _outbound(dana_thread, "We can come Tuesday", T0 + timedelta(hours=1))
    text_in("STOP")
    stop = Message.objects.get(direction="inbound")
    # someone else's text stays off Dana's timeline
    _outbound(ensure_thread(acme_sms, "+14155550142"), "Not Dana", T0 + timedelta(hours=2))

    response = acme_csr.client().get(_url(dana))

    assert response.status_code == 200
    items = [(item["type"], item["data"]["id"]) for item in response.json()["results"]]
    event = stop.consent_events.get()
    # the ledger event is written just after the text that caused it
    assert items == [
        ("consent", event.pk),
        ("message", stop.pk),
        ("message", reply.pk),
        ("call", call.pk),
    ]
    opted_out, text = (item["data"] for item in response.json()["results"][:2])
    assert (opted_out["action"], opted_out["source"], opted_out["message"]) == (
        "opt_out",
        "keyword",
        stop.pk,
    )
    assert (text["direction"], text["body"], text["status"]) == ("inbound", "STOP", "received")


def test_pages_walk_texts_and_calls_once(acme_sms, dana_thread, acme_manager):
    dana = dana_thread.contact
    calls = [CallFactory(company=acme_sms, contact=dana, started_at=T0) for _ in range(2)]
    texts = [_outbound(dana_thread, f"text {n}", T0) for n in range(3)]
    client = acme_manager.client()

    seen, url = [], f"{_url(dana)}?page_size=2"
    while url:
        body = client.get(url).json()
        seen += [(item["type"], item["data"]["id"]) for item in body["results"]]
        url = body["next"]

    expected = [("message", t.pk) for t in reversed(texts)] + [
        ("call", c.pk) for c in reversed(calls)
    ]
    assert seen == expected


def test_the_query_count_does_not_grow_with_the_timelines_length(acme_sms, dana_thread, acme_csr):
    for n in range(20):
        _outbound(dana_thread, f"text {n}", T0 + timedelta(minutes=n))
        record_consent(acme_sms, phone=CUSTOMER, action="help", source="keyword")
        CallFactory(company=acme_sms, contact=dana_thread.contact)
    client = acme_csr.client()
    client.get(_url(dana_thread.contact))

    counts = []
    for size in (3, 60):
        with CaptureQueriesContext(connection) as queries:
            body = client.get(_url(dana_thread.contact), {"page_size": size}).json()
        assert len(body["results"]) == size
        counts.append(len(queries))

    assert counts[0] == counts[1]


def test_the_outsider_gets_404(dana_thread, globex_manager):
    response = globex_manager.client().get(_url(dana_thread.contact))

    assert response.status_code == 404


def test_a_sales_rep_may_not_read_the_timeline(dana_thread, acme_rep):
    assert acme_rep.client().get(_url(dana_thread.contact)).status_code == 403


def test_another_tenants_texts_to_the_same_number_stay_off(acme_sms, dana_thread, globex, acme_csr):
    their_thread = ensure_thread(globex, CUSTOMER)
    _outbound(their_thread, "Globex here", T0)
    record_consent(globex, phone=CUSTOMER, action="opt_out", source="api")

    response = acme_csr.client().get(_url(dana_thread.contact))

    assert response.json()["results"] == []
