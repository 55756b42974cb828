"""Fixtures for analysis: calls transcribed from the sandbox's scenarios (through the real
transcription stage and the sandbox's Deepgram), ready for the analysis stage."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from calls import transcription
from calls.models import Call
from tests.pipeline.conftest import (  # noqa: F401 -- fixtures shared with the pipeline's tests
    Worker,
    _recordings_in_tmp,
    recorded_call,
    run_tasks,
    worker,
)

NEW_YORK = ZoneInfo("America/New_York")
# A Friday, 16:40 in New York (EST, -05:00).
FRIDAY_1640 = datetime.datetime(2026, 3, 6, 16, 40, tzinfo=NEW_YORK)
ANALYZE = "analysis.tasks.analyze_call"


def transcribed_call(company, scenario: str = "booked", *, started_at=FRIDAY_1640) -> Call:
    """A call of ``scenario`` that the transcription stage has just taken to ``transcribed``
    (the hand-off's enqueue is not run: in a ``db`` test commit hooks wait)."""
    call = recorded_call(company, scenario, started_at=started_at)
    assert transcription.transcribe_call(call.pk) == Call.Stage.TRANSCRIBED
    call.refresh_from_db()
    return call


@pytest.fixture
def openai_requests(sandbox):
    """The bodies of the requests the sandbox's OpenAI received, oldest first."""

    def bodies() -> list[str]:
        return [r["body"] for r in sandbox.recorded("openai")]

    return bodies
