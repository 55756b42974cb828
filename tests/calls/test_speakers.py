"""Speaker roles from diarised utterances: the sandbox scenarios are the ground truth."""

from __future__ import annotations

from typing import Any

import pytest

from calls.speakers import assign_roles
from integrations.sandbox.scenarios import SCENARIOS, Scenario


def utterances(scenario: Scenario) -> list[dict[str, Any]]:
    return [
        {"speaker": u.speaker, "start": u.start, "end": u.end, "text": u.text, "confidence": 0.9}
        for u in scenario.utterances
    ]


def truth(scenario: Scenario) -> dict[int, str]:
    return {u.speaker: u.role for u in scenario.utterances}


def lines(*turns: tuple[int, str]) -> list[dict[str, Any]]:
    """Utterances from (speaker, text) pairs, two seconds apart."""
    return [
        {"speaker": speaker, "start": 2.0 * i, "end": 2.0 * i + 1.5, "text": text}
        for i, (speaker, text) in enumerate(turns)
    ]


def swapped(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**u, "speaker": 1 - u["speaker"]} for u in items]


@pytest.mark.parametrize("direction", ["inbound", ""])
@pytest.mark.parametrize("key", list(SCENARIOS))
def test_every_sandbox_scenario_maps_to_its_scripted_roles(key: str, direction: str) -> None:
    scenario = SCENARIOS[key]

    mapping = assign_roles(utterances(scenario), direction=direction)

    assert mapping.roles == truth(scenario)
    assert mapping.confidence >= 0.75, mapping.method
    assert mapping.method


@pytest.mark.parametrize("key", list(SCENARIOS))
def test_speaker_numbering_does_not_decide_the_role(key: str) -> None:
    # given: Deepgram numbers the customer 0 and the CSR 1
    scenario = SCENARIOS[key]
    expected = {1 - speaker: role for speaker, role in truth(scenario).items()}

    # when
    mapping = assign_roles(swapped(utterances(scenario)), direction="inbound")

    # then
    assert mapping.roles == expected
    assert mapping.roles[0] == "customer"


@pytest.mark.parametrize("key", [k for k in SCENARIOS if k != "voicemail"])
def test_customer_speaking_first_still_maps_when_the_greeting_was_cut(key: str) -> None:
    # given: the recording starts after the CSR's greeting, so the customer is speaker 0
    scenario = SCENARIOS[key]
    rest = swapped(utterances(scenario)[1:])
    expected = {1 - speaker: role for speaker, role in truth(scenario).items()}

    # when
    mapping = assign_roles(rest, direction="inbound")

    # then
    assert rest[0]["speaker"] == 0
    assert mapping.roles == expected


def test_mono_inbound_voicemail_is_the_customer() -> None:
    message = [u for u in utterances(SCENARIOS["voicemail"]) if u["speaker"] == 1]
    message[0]["speaker"] = 0

    mapping = assign_roles(message, direction="inbound")

    assert mapping.roles == {0: "customer"}
    assert mapping.confidence >= 0.75


def test_mono_outbound_voicemail_is_the_agent() -> None:
    message = lines(
        (
            0,
            "Hi Dana, this is Maria from Acme Heating and Air, following up on your estimate."
            " Please call me back at six one seven five five five zero one zero zero.",
        )
    )

    mapping = assign_roles(message, direction="outbound")

    assert mapping.roles == {0: "agent"}


def test_mono_call_with_unknown_direction_goes_by_its_words() -> None:
    message = lines((3, "Hi, I'm calling about my water heater, please call me back."))

    assert assign_roles(message, direction="").roles == {3: "customer"}


def test_outbound_voicemail_greeting_belongs_to_the_customer() -> None:
    call = lines(
        (0, "Hi, you've reached Dana. Leave a message after the beep."),
        (1, "Hi Dana, this is Maria from Acme Heating and Air. Give us a call back at 555 0100."),
    )

    mapping = assign_roles(call, direction="outbound")

    assert mapping.roles == {0: "customer", 1: "agent"}


def test_outbound_call_where_the_agent_introduces_themselves_second() -> None:
    call = lines(
        (0, "Hello?"),
        (1, "Hi, this is Maria from Acme Heating and Air, calling about your estimate request."),
        (0, "Oh, yes, hi."),
        (1, "I have Thursday at 10 am open for the estimate. Does that work?"),
        (0, "Yes, that works."),
        (1, "Great, you're all set for Thursday."),
    )

    mapping = assign_roles(call, direction="outbound")

    assert mapping.roles == {0: "customer", 1: "agent"}
    assert mapping.confidence >= 0.75


def test_transfer_adds_a_second_agent() -> None:
    call = lines(
        (0, "Thanks for calling Acme Heating and Air, this is Maria. How can I help?"),
        (1, "Hi, I'm calling about my furnace repair bill, I was charged twice."),
        (0, "Let me transfer you to our billing team, one moment."),
        (2, "Hi, this is Dave in billing. I can help with that. Can I get your name?"),
        (1, "Dana Whitaker."),
        (2, "I see the double charge and I've refunded it. You're all set."),
    )

    mapping = assign_roles(call, direction="inbound")

    assert mapping.roles == {0: "agent", 1: "customer", 2: "agent"}
    assert mapping.confidence >= 0.5


def test_third_speaker_without_agent_evidence_is_a_customer() -> None:
    call = lines(
        (0, "Acme Heating and Air, this is Kevin. How can I help you?"),
        (1, "Hi, my AC is blowing warm air. How soon can someone come out?"),
        (2, "Ask him how much it costs."),
        (0, "I have a technician available tomorrow at 9 am. Can I get your address?"),
    )

    mapping = assign_roles(call, direction="inbound")

    assert mapping.roles == {0: "agent", 1: "customer", 2: "customer"}


def test_no_utterances() -> None:
    mapping = assign_roles([], direction="inbound")

    assert mapping.roles == {}
    assert mapping.confidence == 0.0


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ("inbound", {0: "agent", 1: "customer"}),
        ("outbound", {0: "customer", 1: "agent"}),
        ("", {0: "agent", 1: "customer"}),
    ],
)
def test_evidence_free_exchange_falls_back_to_who_answered(
    direction: str, expected: dict[int, str]
) -> None:
    mapping = assign_roles(lines((0, "Hello?"), (1, "Hi.")), direction=direction)

    assert mapping.roles == expected
    assert mapping.confidence <= 0.25
    assert "first speaker" in mapping.method


def test_confidence_follows_the_margin_of_evidence() -> None:
    booked = assign_roles(utterances(SCENARIOS["booked"]), direction="inbound")
    bare = assign_roles(lines((0, "Hello?"), (1, "Hi.")), direction="inbound")

    assert booked.confidence >= 0.95
    assert booked.method.startswith("greeting: speaker 0 said 'Thanks for calling'")
    assert bare.confidence < booked.confidence


def test_customer_saying_thanks_for_calling_late_is_not_a_greeting() -> None:
    # A closing courtesy, not an opener: only a speaker's first utterance counts as a greeting.
    call = lines(
        (0, "Acme Heating and Air, how can I help you?"),
        (1, "Hi, is this Acme Heating? My water heater is leaking."),
        (0, "We can send a technician this afternoon."),
        (1, "Great, thanks for calling me back so quickly earlier."),
    )

    assert assign_roles(call, direction="inbound").roles == {0: "agent", 1: "customer"}


def test_accepts_deepgram_schema_dumps() -> None:
    from integrations.deepgram.schemas import Utterance

    raw = [
        Utterance(speaker=0, start=0.0, end=2.0, text="Thank you for calling Acme, this is Maria."),
        Utterance(speaker=1, start=2.5, end=4.0, text="Hi, my address is [CARD] Elm Drive."),
    ]

    mapping = assign_roles([u.model_dump() for u in raw], direction="inbound")

    assert mapping.roles == {0: "agent", 1: "customer"}
