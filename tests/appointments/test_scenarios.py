"""Each of the sandbox's eight scenarios, analysed by the sandbox's OpenAI, becomes the lead
status, appointment, tasks and signals its script calls for.

The expectations are read from the scripts (integrations/sandbox/scenarios.py), not from
the rules under test. The calls are made on Friday 2026-03-06 at 16:40 in New York."""

from __future__ import annotations

import datetime

import pytest

from appointments import pipeline
from appointments.models import Appointment, KeySignal, Lead, LeadStatusChange, Task
from calls.models import Call
from tests.appointments.conftest import analysed_call

EXPECTED = {
    # Dana agrees to "tomorrow at 9 am" at 1420 Maple Street.
    "booked": {
        "status": "qualified_booked",
        "appointment": (
            "2026-03-07T09:00:00-05:00",
            "2026-03-07T10:00:00-05:00",
            "1420 Maple Street",
        ),
        "tasks": [],
        "signals": set(),
    },
    # Marcus finds it "a lot more expensive", will "think about it", asks for a written
    # quote: qualified, not booked; two objections (price, timing), not yet "many".
    "price_objection": {
        "status": "qualified_unbooked",
        "appointment": None,
        "tasks": ["follow_up_call", "send_quote"],
        "signals": set(),
    },
    # Acme does not service pool heaters.
    "not_offered": {
        "status": "qualified_service_not_offered",
        "appointment": None,
        "tasks": [],
        "signals": {"service_not_offered"},
    },
    # Tom's voicemail: "please call me back".
    "voicemail": {
        "status": "qualified_unbooked",
        "appointment": None,
        "tasks": ["call_back", "follow_up_call"],
        "signals": set(),
    },
    # A robocall: no lead worth working, nothing to do.
    "spam": {"status": "new", "appointment": None, "tasks": [], "signals": set()},
    # Linda is "very frustrated", objects to the price, the last visit and wants to ask
    # her husband: not booked, strongly negative.
    "angry": {
        "status": "qualified_unbooked",
        "appointment": None,
        "tasks": ["follow_up_call"],
        "signals": {"many_objections", "negative_sentiment"},
    },
    # Greg books "Friday at 2 pm" at 88 Beacon Street (next Friday, after the switch to
    # daylight saving time) and is sent a payment link.
    "card_number": {
        "status": "qualified_booked",
        "appointment": (
            "2026-03-13T14:00:00-04:00",
            "2026-03-13T15:00:00-04:00",
            "88 Beacon Street",
        ),
        "tasks": ["send_payment_link"],
        "signals": set(),
    },
    # Elena books the advisor "Tuesday at 10 am" at 57 Elm Drive. (The visit "takes about
    # ninety minutes"; the sandbox's rules do not read durations, so it gets the default hour.)
    "long_call": {
        "status": "qualified_booked",
        "appointment": ("2026-03-10T10:00:00-04:00", "2026-03-10T11:00:00-04:00", "57 Elm Drive"),
        "tasks": [],
        "signals": set(),
    },
}


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_each_scenario_produces_its_outcomes(acme, sandbox, scenario):
    expected = EXPECTED[scenario]
    call = analysed_call(acme, scenario)

    assert pipeline.apply_call(call.pk) == Call.Stage.DONE

    call.refresh_from_db()
    assert call.stage == Call.Stage.DONE
    lead = Lead.objects.get(contact=call.contact)
    assert (lead.company_id, lead.status, lead.is_active) == (acme.pk, expected["status"], True)
    assert lead.source == "Google Ads" and lead.last_contacted_at == call.started_at
    (created,) = LeadStatusChange.objects.filter(lead=lead)
    assert (created.from_status, created.to_status, created.actor) == ("", lead.status, None)
    assert (created.call_id, created.analysis_version) == (call.pk, 1)

    appointments = list(Appointment.objects.filter(call=call))
    if expected["appointment"] is None:
        assert appointments == []
    else:
        (appointment,) = appointments
        start, end, address = expected["appointment"]
        assert appointment.scheduled_start == datetime.datetime.fromisoformat(start)
        assert appointment.scheduled_end == datetime.datetime.fromisoformat(end)
        assert (appointment.address, appointment.lead_id) == (address, lead.pk)
        assert (appointment.status, appointment.geocode_status) == ("scheduled", "pending")

    tasks = Task.objects.filter(call=call).order_by("type")
    assert [t.type for t in tasks] == expected["tasks"]
    assert all(
        (t.source, t.status, t.lead_id, t.contact_id) == ("ai", "open", lead.pk, call.contact_id)
        for t in tasks
    )
    signals = KeySignal.objects.filter(call=call)
    assert {s.type for s in signals} == expected["signals"]
