"""The pipeline reaper (``retry-due-calls``): due waiting calls are enqueued on their
stage's queue, and calls stuck in ``transcribing`` past the deadline are taken back; a real
qcluster killed mid-transcription still ends with exactly one transcript."""

from __future__ import annotations

import datetime
import os
import signal

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from calls import pipeline, stages, sweeps, transcription
from calls.models import Call, CallStageChange, Transcript
from calls.transcribers import TranscriptionResult, Utterance
from tests.conftest import wait_for
from tests.pipeline.conftest import TRANSCRIBE, Stage, make_due, recorded_call

SECOND = datetime.timedelta(seconds=1)


def past_deadline(call) -> None:
    """The claim's deadline passes: its lease (claim time + the deadline) is over."""
    deadline = datetime.timedelta(seconds=django_settings.PIPELINE_STAGE_DEADLINES["transcribing"])
    Call.objects.filter(pk=call.pk).update(
        stage_changed_at=timezone.now() - deadline - SECOND,
        next_attempt_at=timezone.now() - SECOND,
    )


def test_a_due_recorded_call_is_enqueued_on_asr(
    acme, sandbox, worker, django_capture_on_commit_callbacks
):
    waiting = recorded_call(acme, "booked", next_attempt_at=timezone.now() + 60 * SECOND)
    due = recorded_call(acme, "booked")
    make_due(due)

    with django_capture_on_commit_callbacks(execute=True):
        assert sweeps.retry_due_calls() == {"failed": 0, "enqueued": 1, "reclaimed": 0}
    assert worker.pushed == [("asr", TRANSCRIBE, (due.pk,))]
    assert Call.objects.get(pk=waiting.pk).stage == Stage.RECORDED


def test_a_recorded_call_whose_task_was_lost_is_enqueued_after_a_grace(
    acme, sandbox, worker, django_capture_on_commit_callbacks
):
    call = recorded_call(acme, "booked")

    assert sweeps.retry_due_calls()["enqueued"] == 0
    later = timezone.now() + sweeps.RECEIVED_GRACE + SECOND
    with django_capture_on_commit_callbacks(execute=True):
        assert sweeps.retry_due_calls(now=later)["enqueued"] == 1
    assert worker.count(TRANSCRIBE) == 1 and Call.objects.get(pk=call.pk).stage == Stage.RECORDED


def test_a_stuck_transcription_is_taken_back_and_finished(acme, sandbox, run_tasks):
    # given a worker claimed the call and died
    call = recorded_call(acme, "booked")
    stale = stages.claim(call, Stage.TRANSCRIBING)

    # then within its deadline nobody touches it
    with run_tasks() as worker:
        assert sweeps.retry_due_calls()["reclaimed"] == 0
    assert worker.pushed == []

    # and past its deadline the reaper puts it back and a worker transcribes it
    past_deadline(call)
    with run_tasks() as worker:
        assert sweeps.retry_due_calls() == {"failed": 0, "enqueued": 1, "reclaimed": 1}
    assert worker.count(TRANSCRIBE) == 1
    call.refresh_from_db()
    assert (call.stage, call.attempts) == (Stage.TRANSCRIBED, 2)
    assert Transcript.objects.filter(call=call).count() == 1
    moves = CallStageChange.objects.filter(call=call).order_by("created_at", "pk")
    assert [(m.from_stage, m.to_stage) for m in moves] == [
        (Stage.RECORDED, Stage.TRANSCRIBING),
        (Stage.TRANSCRIBING, Stage.RECORDED),
        (Stage.RECORDED, Stage.TRANSCRIBING),
        (Stage.TRANSCRIBING, Stage.TRANSCRIBED),
    ]
    assert "deadline" in moves[1].reason

    # and the presumed-dead worker, waking up, writes nothing
    with pytest.raises(stages.LeaseLost):
        transcription.store_result(stale, _any_transcription())
    assert Transcript.objects.filter(call=call).count() == 1


def test_a_call_stuck_on_its_last_attempt_ends_failed(acme, sandbox, settings, worker):
    settings.PIPELINE_MAX_ATTEMPTS = 1
    call = recorded_call(acme, "booked")
    stages.claim(call, Stage.TRANSCRIBING)
    past_deadline(call)

    assert sweeps.retry_due_calls() == {"failed": 1, "enqueued": 0, "reclaimed": 1}
    call.refresh_from_db()
    assert call.stage == Stage.FAILED and "gave up after 1 attempts" in call.stage_reason
    assert worker.pushed == []


def _any_transcription() -> TranscriptionResult:
    return TranscriptionResult(
        provider="deepgram",
        request_id="late",
        text="hello",
        duration=1.0,
        utterances=(Utterance(speaker=0, start=0, end=1, text="hello"),),
    )


@pytest.mark.cluster
def test_a_worker_killed_mid_transcription_still_ends_transcribed(
    acme, sandbox, settings, start_qcluster
):
    # given a real cluster, sharing the project's media root, and a slow Deepgram
    settings.MEDIA_ROOT = django_settings.BASE_DIR / "media"
    sandbox.inject("deepgram.listen", "latency", count=1, delay_seconds=60)
    first = start_qcluster(SANDBOX_URL=sandbox.url)
    call = recorded_call(acme, "booked")
    try:
        pipeline.start_transcription(call)  # autocommit: pushed at once

        # when the cluster is killed while Deepgram holds the request open
        wait_for(lambda: sandbox.recorded("deepgram.listen"), timeout=30)
        assert Call.objects.get(pk=call.pk).stage == Stage.TRANSCRIBING
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()

        # and the reaper runs once the claim's lease has passed
        past_deadline(call)
        wait_for(lambda: sweeps.retry_due_calls()["reclaimed"] == 1, timeout=10)
        start_qcluster(SANDBOX_URL=sandbox.url)

        # then a new cluster finishes it, with exactly one transcript, on its second
        # transcription attempt (and analysis and its outcomes take it on from there)
        wait_for(lambda: Call.objects.get(pk=call.pk).stage == Stage.DONE, timeout=60)
        assert Transcript.objects.filter(call=call).count() == 1
        claims = CallStageChange.objects.filter(call=call, to_stage=Stage.TRANSCRIBING)
        assert claims.count() == 2
    finally:
        call.recording.delete(save=False)
