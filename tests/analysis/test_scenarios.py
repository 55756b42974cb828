"""Each of the sandbox's eight scenarios, analysed through the real stage and the sandbox's
OpenAI, gets the booking status, objections and appointment its script calls for.

The expectations are read from the scripts (integrations/sandbox/scenarios.py), one line a
turn, numbered from 0 as the transcript's utterances are; they are not computed with the
sandbox's rules. The calls are made on Friday 2026-03-06 at 16:40 in New York."""

from __future__ import annotations

import datetime

import pytest

from analysis import services
from analysis.models import CallAnalysis
from calls.models import Call
from tests.analysis.conftest import transcribed_call

EXPECTED = {
    # Dana agrees to "tomorrow at 9 am" at 1420 Maple Street, no pushback.
    "booked": (
        "booked",
        [],
        ("2026-03-07T09:00:00-05:00", "2026-03-07T10:00:00-05:00", "1420 Maple Street"),
    ),
    # Marcus: "a lot more expensive than I expected" (5), "I need to think about it" (7).
    "price_objection": ("not_booked", [("price", 5), ("timing", 7)], None),
    # Acme does not service pool heaters.
    "not_offered": ("service_not_offered", [], None),
    # Tom's voicemail asks for a call back.
    "voicemail": ("not_booked", [], None),
    # A robocall.
    "spam": ("not_booked", [], None),
    # Linda: "This is ridiculous" (1), "way too much for a repair" (3), "Last time he showed
    # up two hours late" (5), "I need to talk to my husband first" (7).
    "angry": (
        "not_booked",
        [("trust", 1), ("price", 3), ("trust", 5), ("decision_maker", 7)],
        None,
    ),
    # Greg books "Friday at 2 pm" at 88 Beacon Street: next Friday, after the switch to
    # daylight saving time.
    "card_number": (
        "booked",
        [],
        ("2026-03-13T14:00:00-04:00", "2026-03-13T15:00:00-04:00", "88 Beacon Street"),
    ),
    # Elena asks what things cost (questions, not objections) and books "Tuesday at 10 am"
    # at 57 Elm Drive.
    "long_call": (
        "booked",
        [],
        ("2026-03-10T10:00:00-04:00", "2026-03-10T11:00:00-04:00", "57 Elm Drive"),
    ),
}


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_each_scenario_is_analysed_as_its_script_says(acme, sandbox, scenario):
    booking_status, objections, appointment = EXPECTED[scenario]
    call = transcribed_call(acme, scenario)

    assert services.analyze_call(call.pk) == Call.Stage.ANALYZED

    analysis = CallAnalysis.objects.get(call=call, is_current=True)
    assert analysis.booking_status == booking_status
    # a text to win the booking is suggested only for a qualified call that did not book
    assert bool(analysis.followup_text) == (
        analysis.qualified and booking_status == "not_booked"
    ), analysis.followup_text
    assert [(o["category"], o["utterance"]) for o in analysis.objections] == objections
    utterances = call.transcript.utterances
    for objection in analysis.objections:
        said = utterances[objection["utterance"]]
        assert said["role"] == "customer" and objection["quote"] == said["text"]
    if appointment is None:
        assert analysis.appointment is None
    else:
        start, end, address = appointment
        assert datetime.datetime.fromisoformat(analysis.appointment["start"]) == (
            datetime.datetime.fromisoformat(start)
        )
        assert datetime.datetime.fromisoformat(analysis.appointment["end"]) == (
            datetime.datetime.fromisoformat(end)
        )
        assert analysis.appointment["address"] == address
