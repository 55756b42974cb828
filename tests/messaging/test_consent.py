"""The consent ledger: keywords, free-text revocations and their negatives, the API."""

from __future__ import annotations

import pytest

from messaging import selectors
from messaging.consent import classify
from messaging.models import ConsentEvent
from tests.messaging.conftest import CUSTOMER, text_in


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        " Stop ",
        "STOPALL",
        "unsubscribe",
        "Cancel",
        "END",
        "quit",
        "REVOKE",
        "optout",
    ],
)
def test_opt_out_keywords_match_the_whole_trimmed_body_in_any_case(body):
    assert classify(body) == ("opt_out", "keyword")


@pytest.mark.parametrize("body", ["START", "unstop", "Yes"])
def test_opt_in_keywords(body):
    assert classify(body) == ("opt_in", "keyword")


def test_help_keyword():
    assert classify(" help ") == ("help", "keyword")


@pytest.mark.parametrize(
    "body",
    [
        "please stop texting me",
        "Stop sending me these messages",
        "don't text me anymore",
        "Do not contact me again",
        "remove me from your list",
        "Take me off your list please",
        "unsubscribe me",
        "I want to opt out",
        "no more texts",
        "lose my number",
        "Please don\u2019t text me",
    ],
)
def test_free_text_revocations_opt_out(body):
    assert classify(body) == ("opt_out", "free_text")


@pytest.mark.parametrize(
    "body",
    [
        "don't stop",
        "stop by tomorrow at 3",
        "Please don't stop texting me, I like the reminders",
        "Can you stop at the hardware store first?",
        "yes please",  # not the whole body, so not the keyword
        "Is the end of the week OK?",
        "I won't opt out",
        "Cancel my Tuesday appointment and book Thursday",
        "",
    ],
)
def test_texts_that_must_not_change_consent(body):
    assert classify(body) is None


def test_stop_then_start_through_the_webhook_is_recorded_with_its_message(acme_sms):
    text_in("STOP", sid="SM" + "1" * 32)
    assert selectors.is_opted_out(acme_sms, CUSTOMER)

    text_in("start", sid="SM" + "2" * 32)

    assert not selectors.is_opted_out(acme_sms, CUSTOMER)
    events = list(ConsentEvent.objects.order_by("pk"))
    assert [(e.action, e.source) for e in events] == [("opt_out", "keyword"), ("opt_in", "keyword")]
    assert [e.message.body for e in events] == ["STOP", "start"]


def test_help_is_recorded_and_changes_no_state(acme_sms):
    text_in("STOP", sid="SM" + "1" * 32)
    text_in("HELP", sid="SM" + "2" * 32)

    assert selectors.consent_state(acme_sms, CUSTOMER) == "opt_out"
    assert ConsentEvent.objects.filter(action="help").count() == 1


def test_an_event_can_be_neither_edited_nor_deleted(acme_sms):
    text_in("STOP")
    event = ConsentEvent.objects.get()

    event.action = "opt_in"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()


def test_consent_api_answers_state_and_history(acme_sms, acme_csr):
    text_in("please stop texting me")

    response = acme_csr.client().get("/api/v1/consent/", {"phone": "(212) 555-0142"})

    assert response.status_code == 200
    body = response.json()
    assert body["phone"] == CUSTOMER and body["state"] == "opt_out" and body["opted_out"]
    [event] = body["history"]
    assert (event["action"], event["source"], event["channel"]) == ("opt_out", "free_text", "sms")
    assert event["message"] is not None


def test_manual_opt_out_through_the_api(acme_sms, acme_manager):
    response = acme_manager.client().post(
        "/api/v1/consent/", {"phone": CUSTOMER, "note": "asked on the phone"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["state"] == "opt_out"
    event = ConsentEvent.objects.get()
    assert (event.source, event.actor, event.note) == (
        "api",
        acme_manager.user,
        "asked on the phone",
    )


def test_consent_needs_a_valid_phone(acme_sms, acme_csr):
    assert acme_csr.client().get("/api/v1/consent/").status_code == 400
    assert acme_csr.client().get("/api/v1/consent/", {"phone": "nope"}).status_code == 400


def test_the_outsider_sees_none_of_acmes_ledger(acme_sms, globex_manager):
    text_in("STOP")

    response = globex_manager.client().get("/api/v1/consent/", {"phone": CUSTOMER})

    assert response.status_code == 200
    assert response.json()["state"] == "none" and response.json()["history"] == []


def test_a_sales_rep_may_not_read_the_ledger(acme_sms, acme_rep):
    assert acme_rep.client().get("/api/v1/consent/", {"phone": CUSTOMER}).status_code == 403
