"""Fixtures for the pipeline after ingest: recorded calls whose stored audio is one of the
sandbox's scenarios, and the stand-in worker of tests/calls (here it runs transcription)."""

from __future__ import annotations

import datetime
import json

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from calls import pipeline
from calls.models import Call
from integrations.sandbox import scenarios
from otto import queues
from tests.api.factories import CallFactory
from tests.calls.conftest import (  # noqa: F401 -- fixtures shared with ingest's tests
    Worker,
    _recordings_in_tmp,
    run_tasks,
)

TRANSCRIBE = "calls.tasks.transcribe_call"
INGEST = "calls.tasks.ingest_call"
Stage = Call.Stage


@pytest.fixture(autouse=True)
def _calls_stages_alone():
    """These tests are about calls' own stages: a call waits at ``transcribed``, as it does
    with no app taking it on (tests/analysis covers the hand-off analysis registers)."""
    handler = pipeline.handoff_for(Stage.TRANSCRIBED)
    pipeline.unregister_handoff(Stage.TRANSCRIBED)
    yield
    if handler is not None:
        pipeline.unregister_handoff(Stage.TRANSCRIBED)
        pipeline.register_handoff(Stage.TRANSCRIBED, handler)


@pytest.fixture
def worker(monkeypatch) -> Worker:
    """tests/calls' stand-in worker, running transcription too (ingest's tests hold it)."""
    stand_in = Worker()
    stand_in.held = set()
    monkeypatch.setattr(queues, "_push", stand_in.push)
    return stand_in


def scenario_audio(key: str) -> bytes:
    return scenarios.audio_for(scenarios.SCENARIOS[key])


def recorded_call(company, scenario: str = "booked", *, audio: bytes | None = None, **fields):
    """A ``recorded`` call whose stored audio is the sandbox scenario's (or ``audio``)."""
    data = audio if audio is not None else scenario_audio(scenario)
    found = scenarios.SCENARIOS.get(scenario)
    fields.setdefault("direction", found.direction if found else Call.Direction.INBOUND)
    fields.setdefault("stage", Stage.RECORDED)
    call = CallFactory(company=company, **fields)
    call.recording.save(call.recording_path, ContentFile(data), save=False)
    call.recording_size = len(data)
    call.recording_content_type = "audio/wav"
    call.save()
    return call


def make_due(call: Call) -> None:
    """Skip the backoff: the call's next attempt is due now."""
    past = timezone.now() - datetime.timedelta(seconds=1)
    Call.objects.filter(pk=call.pk).update(next_attempt_at=past)


SHUNYA_URL = "/webhooks/shunya"


def shunya_delivery(outbox, job):
    """The sandbox's signed job-complete webhook for Shunya ``job``, once it was sent."""
    from tests.conftest import wait_for

    def find():
        for delivery in outbox.to(SHUNYA_URL):
            if json.loads(delivery.body)["job"]["job_id"] == job.external_id:
                return delivery
        return None

    return wait_for(find, timeout=10, interval=0.05)


def post_shunya(client, body: bytes, headers: dict[str, str]):
    """POST a (signed) Shunya webhook body with its headers, as Shunya sends it."""
    return client.post(
        SHUNYA_URL,
        data=body,
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k.lower() != "content-type"},
    )
