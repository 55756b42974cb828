"""Fixtures for outcomes: calls of the sandbox's scenarios taken through the real
transcription and analysis stages (the sandbox's Deepgram and OpenAI) to ``analyzed``,
ready for the ``applied`` stage."""

from __future__ import annotations

import pytest

from analysis import services as analysis_services
from calls.models import Call
from integrations.sandbox import scenarios
from otto.models import Contact
from tests.analysis.conftest import (  # noqa: F401 -- fixtures shared with analysis' tests
    FRIDAY_1640,
    Worker,
    _recordings_in_tmp,
    run_tasks,
    transcribed_call,
    worker,
)
from tests.api.factories import ContactFactory

APPLY = "appointments.tasks.apply_call"
GEOCODE = "appointments.tasks.geocode_appointment"


def analysed_call(company, scenario: str = "booked", *, contact=None, **fields) -> Call:
    """A call of ``scenario`` at ``analyzed``, with its contact (the scenario's caller, or
    ``contact``); the hand-off's enqueue is not run (in a ``db`` test commit hooks wait)."""
    script = scenarios.SCENARIOS[scenario]
    if contact is None:
        # The scenario's caller: the same contact on every call of that scenario.
        contact = Contact.objects.filter(company=company, phone=script.customer_phone).first()
        contact = contact or ContactFactory(
            company=company, phone=script.customer_phone, name=script.customer_name
        )
    call = transcribed_call(company, scenario, **fields)
    Call.objects.filter(pk=call.pk).update(
        contact=contact, customer_number=contact.phone, source_name=script.source
    )
    assert analysis_services.analyze_call(call.pk) == Call.Stage.ANALYZED
    call.refresh_from_db()
    return call


@pytest.fixture
def geocode_requests(sandbox):
    """The addresses the sandbox's Google geocoder was asked for, oldest first."""

    def addresses() -> list[str]:
        return [r["query"]["address"][0] for r in sandbox.recorded("google_maps")]

    return addresses
