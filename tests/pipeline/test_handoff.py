"""The seams between stages: the hand-off registry the next app fills, the one transcriber
interface (a result or a pending job), and ``calls`` never importing the apps above it."""

from __future__ import annotations

import ast
import datetime
import pathlib

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from calls import pipeline, stages, sweeps, transcribers, transcription
from calls.models import Call, Transcript
from calls.providers import PendingJob
from calls.transcribers import TranscriptionResult, Utterance
from otto.queues import Queue
from tests.pipeline.conftest import Stage, recorded_call


@pytest.fixture
def handoff():
    """A handler registered for ``transcribed``, recording what it saw of each call."""
    seen: list[dict] = []

    def take_on(call: Call) -> None:
        seen.append(
            {
                "call": call.pk,
                "stage": call.stage,
                "stored_stage": Call.objects.get(pk=call.pk).stage,
                "has_transcript": Transcript.objects.filter(call=call).exists(),
                "in_transaction": connection.in_atomic_block,
            }
        )

    pipeline.register_handoff(Stage.TRANSCRIBED, take_on)
    yield seen
    pipeline.unregister_handoff(Stage.TRANSCRIBED)


# Real transactions: "inside the moving transaction" means something only outside a test's
# wrapping one.
@pytest.mark.django_db(transaction=True)
def test_a_registered_handler_gets_the_call_once_in_the_moving_transaction(
    acme, sandbox, run_tasks, handoff
):
    call = recorded_call(acme, "booked")

    with run_tasks():
        assert transcription.transcribe_call(call.pk) == Stage.TRANSCRIBED
        # a second task for the same call hands nothing on again
        assert transcription.transcribe_call(call.pk) is None

    assert handoff == [
        {
            "call": call.pk,
            "stage": Stage.TRANSCRIBED,
            "stored_stage": Stage.TRANSCRIBED,
            "has_transcript": True,
            "in_transaction": True,
        }
    ]


def test_a_handler_that_fails_rolls_the_move_back(acme, sandbox, worker):
    call = recorded_call(acme, "booked")

    def broken(call: Call) -> None:
        raise RuntimeError("analysis is down")

    pipeline.register_handoff(Stage.TRANSCRIBED, broken)
    try:
        with pytest.raises(RuntimeError):
            transcription.transcribe_call(call.pk)
    finally:
        pipeline.unregister_handoff(Stage.TRANSCRIBED)

    # the move and the transcript went with the handler's failure: nothing half-done
    assert not Transcript.objects.filter(call=call).exists()
    assert Call.objects.get(pk=call.pk).stage != Stage.TRANSCRIBED


def test_without_a_handler_the_call_waits_transcribed(acme, sandbox, run_tasks):
    assert pipeline.handoff_for(Stage.TRANSCRIBED) is None
    call = recorded_call(acme, "booked")

    with run_tasks() as worker:
        transcription.transcribe_call(call.pk)

    assert Call.objects.get(pk=call.pk).stage == Stage.TRANSCRIBED
    assert worker.pushed == [("indexing", "calls.tasks.index_call", (call.pk,))]


def test_a_second_handler_for_a_stage_is_a_wiring_error(handoff):
    with pytest.raises(ImproperlyConfigured):
        pipeline.register_handoff(Stage.TRANSCRIBED, lambda call: None)
    with pytest.raises(ValueError):
        pipeline.register_handoff("no-such-stage", lambda call: None)


def test_calls_never_imports_the_apps_above_it():
    root = pathlib.Path(django_settings.BASE_DIR) / "calls"
    above = ("analysis", "appointments", "messaging")
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in above]
    assert offenders == []


# --- one transcriber interface --------------------------------------------------------------


class Recorded:
    """A stand-in asynchronous transcriber: ``submit`` answers a pending job."""

    name = "stand-in"
    queue = Queue.ASR
    records: list[int] = []

    def submit(self, call: Call) -> PendingJob:
        return PendingJob(
            provider=self.name,
            external_id=f"job-{call.pk}",
            wait_until=timezone.now() + datetime.timedelta(hours=3),
            record=lambda: Recorded.records.append(call.pk),
        )


class Finished:
    """A stand-in synchronous transcriber: ``submit`` answers the result."""

    name = "finished"
    queue = Queue.ASR

    def submit(self, call: Call) -> TranscriptionResult:
        return TranscriptionResult(
            provider=self.name,
            text="hello there",
            utterances=(Utterance(0, 0.0, 1.0, "hello there", 0.9),),
            duration=1.0,
            language="en",
            model="stand-in-1",
            request_id="req-1",
        )


@pytest.fixture
def stand_ins(monkeypatch, acme):
    monkeypatch.setitem(transcribers.TRANSCRIBERS, "stand-in", f"{__name__}.Recorded")
    monkeypatch.setitem(transcribers.TRANSCRIBERS, "finished", f"{__name__}.Finished")
    Recorded.records = []
    return acme


def test_a_pending_job_holds_the_call_until_it_may_finish(stand_ins, worker):
    stand_ins.transcriber = "stand-in"
    stand_ins.save()
    call = recorded_call(stand_ins, "booked")

    assert transcription.transcribe_call(call.pk) == Stage.TRANSCRIBING

    call.refresh_from_db()
    assert Recorded.records == [call.pk]
    assert call.stage == Stage.TRANSCRIBING and not Transcript.objects.filter(call=call).exists()
    assert call.next_attempt_at - timezone.now() > datetime.timedelta(hours=2)
    # the reaper leaves the call to its job while the hold lasts
    later = timezone.now() + datetime.timedelta(hours=1)
    assert sweeps.retry_due_calls(now=later)["reclaimed"] == 0


def test_a_finished_result_is_stored_as_the_domain_result(stand_ins, worker):
    stand_ins.transcriber = "finished"
    stand_ins.save()
    call = recorded_call(stand_ins, "booked")

    assert transcription.transcribe_call(call.pk) == Stage.TRANSCRIBED

    transcript = Transcript.objects.get(call=call)
    assert (transcript.provider, transcript.model, transcript.language) == (
        "finished",
        "stand-in-1",
        "en",
    )
    assert transcript.request_id == "req-1" and transcript.text == "hello there"
    assert transcript.utterances[0]["confidence"] == 0.9


def test_a_job_submitted_after_the_claim_was_lost_records_nothing(stand_ins, worker):
    call = recorded_call(stand_ins, "booked")
    stale = stages.claim(call, Stage.TRANSCRIBING)
    Call.objects.filter(pk=call.pk).update(next_attempt_at=timezone.now())  # taken over

    job = Recorded().submit(call)
    with pytest.raises(stages.LeaseLost), transaction.atomic():
        stale.extend(job.wait_until)
        job.record()

    assert Recorded.records == []


def test_an_unknown_transcriber_fails_the_call(acme, worker):
    acme.transcriber = "nobody"
    acme.save()
    call = recorded_call(acme, "booked")

    assert transcription.transcribe_call(call.pk) == Stage.FAILED
    assert "unknown transcriber 'nobody'" in Call.objects.get(pk=call.pk).last_error
