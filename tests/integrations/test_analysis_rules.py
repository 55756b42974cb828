"""The sandbox's simulated analysis: keyword rules, and fitting them to any JSON schema."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

import pydantic
import pytest
from openai.lib._pydantic import to_strict_json_schema

from integrations.sandbox.analysis_rules import SIMULATED_NOTE, analyze, fit_to_schema

BOOKED = """agent: Acme Heating, this is Sam.
customer: Our AC is out and it's 95 degrees, can someone come today?
agent: I have a technician at 3 pm today. What's the address?
customer: 1200 Oak Avenue.
agent: You're booked for today at 3 pm at 1200 Oak Avenue.
customer: Perfect, thanks so much."""

ANGRY = """agent: Acme Heating.
customer: This is ridiculous, your technician never showed up last time.
customer: And the price you quoted is way too expensive.
customer: I'm going with another company.
agent: I'm sorry to hear that."""

NOT_OFFERED = """agent: Acme Plumbing.
customer: Do you fix roofs?
agent: Sorry, we don't do roofing, we only do plumbing."""

SPAM = """agent: Acme Heating, how can I help?
customer: Hi, we're calling about your Google listing, press 1 to verify."""

CARD = """agent: How would you like to pay the deposit?
customer: My card number is 4111 1111 1111 1111.
agent: Thanks, I'll send you a secure link instead."""


def test_booked_call():
    facts = analyze(BOOKED)

    assert facts["booking_status"] == "booked" and facts["booked"] is True
    assert facts["lead_quality"] == "hot"
    assert facts["requested_appointment"] == {"time": "today at 3 pm", "address": "1200 Oak Avenue"}
    assert facts["sentiment"] == "positive"
    assert facts["simulated"] is True and SIMULATED_NOTE in facts["summary"]


def test_angry_customer_with_several_objections():
    facts = analyze(ANGRY)

    assert facts["sentiment"] == "negative"
    assert [o["category"] for o in facts["objections"]] == ["trust", "price", "competitor"]
    assert facts["objections"][1]["quote"] == "And the price you quoted is way too expensive."
    assert facts["booking_status"] == "not_booked" and facts["lead_quality"] == "warm"
    assert "Follow up to book the appointment" in facts["pending_actions"]


@pytest.mark.parametrize(
    ("transcript", "status", "quality", "intent"),
    [
        (NOT_OFFERED, "service_not_offered", "cold", "service_not_offered"),
        (SPAM, "not_booked", "cold", "spam"),
        ("", "not_booked", "cold", "inquiry"),
    ],
)
def test_cold_calls(transcript, status, quality, intent):
    facts = analyze(transcript)

    assert (facts["booking_status"], facts["lead_quality"], facts["intent"]) == (
        status,
        quality,
        intent,
    )
    assert facts["pending_actions"] == []


def test_card_number_mention():
    facts = analyze(CARD)

    assert facts["card_number_mentioned"] is True
    assert any("secure payment link" in action for action in facts["pending_actions"])
    assert analyze(BOOKED)["card_number_mentioned"] is False


def test_prompt_text_around_the_transcript_is_ignored():
    prompt = "Analyse this call. List price objections and quotes.\n" + BOOKED + "\nReturn JSON."
    facts = analyze(prompt)

    assert facts["objections"] == [] and facts["booking_status"] == "booked"


def test_time_without_address_is_not_booked():
    facts = analyze("customer: Can you come tomorrow at 10 am?\nagent: Sounds good.")
    assert facts["booking_status"] == "not_booked"
    assert facts["requested_appointment"] == {"time": "tomorrow at 10 am", "address": None}


# --- fitting to schemas ---------------------------------------------------------------


class Mood(StrEnum):
    HAPPY = "Happy"
    NEUTRAL = "Neutral"
    UPSET = "Upset"


class Quote(pydantic.BaseModel):
    category: str
    quote: str


class Slot(pydantic.BaseModel):
    time: str | None
    address: str | None


class Everything(pydantic.BaseModel):
    summary: str
    booking_status: Literal["booked", "not_booked", "service_not_offered"]
    status: Literal["BOOKED", "NOT_BOOKED", "SERVICE_NOT_OFFERED"]
    mood: Mood
    objections: list[Quote]
    requested_appointment: Slot | None
    pending_actions: list[str]
    objection_count: int = pydantic.Field(ge=0, le=10)
    score: float = pydantic.Field(ge=1, le=5)
    is_spam: bool
    unknown_text: str
    unknown_list: list[int]
    nested_unknown: Slot
    when: datetime | None
    kind: Literal["call"]


@pytest.mark.parametrize("strict", [True, False])
def test_any_pydantic_schema_validates(strict):
    schema = to_strict_json_schema(Everything) if strict else Everything.model_json_schema()

    value = fit_to_schema(schema, analyze(ANGRY))
    parsed = Everything.model_validate(value)

    assert parsed.booking_status == "not_booked"
    assert parsed.status == "NOT_BOOKED"  # enums match case-insensitively
    assert parsed.mood is Mood.HAPPY  # no fact: the first enum value
    assert [q.category for q in parsed.objections] == ["trust", "price", "competitor"]
    assert parsed.objection_count == 0 and parsed.score == 1  # clamped to the minimum
    assert parsed.summary.startswith(SIMULATED_NOTE)
    assert parsed.unknown_text == "" and parsed.unknown_list == []
    assert parsed.kind == "call"


def test_free_text_fields_are_labelled_simulated():
    schema = {
        "type": "object",
        "properties": {"notes": {"type": "string"}, "reasoning": {"type": ["string", "null"]}},
        "required": ["notes", "reasoning"],
    }

    value = fit_to_schema(schema, analyze(BOOKED))

    assert value == {"notes": SIMULATED_NOTE, "reasoning": None}


def test_nullable_object_gets_null_without_facts():
    class Only(pydantic.BaseModel):
        requested_appointment: Slot | None

    value = fit_to_schema(to_strict_json_schema(Only), analyze(SPAM))

    assert value == {"requested_appointment": None}
