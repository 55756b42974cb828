"""Transcription on the sandbox's Deepgram: recorded → transcribing → transcribed, one
redacted Transcript per call with speaker roles, and failures that back off or fail."""

from __future__ import annotations

import json
import threading

import pytest
from django.forms.models import model_to_dict

from calls import stages, sweeps, transcription
from calls.models import Call, CallStageChange, Transcript
from integrations.sandbox import scenarios
from tests.pipeline.conftest import TRANSCRIBE, Stage, make_due, recorded_call


def history(call) -> list[tuple[str, str]]:
    changes = CallStageChange.objects.filter(call=call).order_by("created_at", "pk")
    return list(changes.values_list("from_stage", "to_stage"))


def test_a_booked_call_is_transcribed_once_with_roles(acme, sandbox, run_tasks):
    call = recorded_call(acme, "booked")

    with run_tasks() as worker:
        assert transcription.transcribe_call(call.pk) == Stage.TRANSCRIBED

    call.refresh_from_db()
    assert (call.stage, call.attempts, call.next_attempt_at) == (Stage.TRANSCRIBED, 1, None)
    transcript = Transcript.objects.get(call=call)
    assert transcript.company_id == acme.pk
    assert transcript.provider == "deepgram" and transcript.request_id
    assert transcript.word_count == len(transcript.text.split()) > 50
    assert transcript.duration_seconds == pytest.approx(scenarios.SCENARIOS["booked"].duration)
    assert transcript.audio_minutes_billed > 0
    assert transcript.roles == {"0": "agent", "1": "customer"}
    assert 0 <= transcript.roles_confidence <= 1 and transcript.roles_method
    script = scenarios.SCENARIOS["booked"].utterances
    assert [u["role"] for u in transcript.utterances] == [u.role for u in script]
    assert transcript.utterances[0]["text"].startswith("Thanks for calling Acme")
    assert history(call) == [
        (Stage.RECORDED, Stage.TRANSCRIBING),
        (Stage.TRANSCRIBING, Stage.TRANSCRIBED),
    ]
    # only search indexing follows: analysis is not built, so the call waits at transcribed
    assert worker.pushed == [("indexing", "calls.tasks.index_call", (call.pk,))]


def test_the_card_number_scenario_is_stored_redacted(acme, sandbox):
    call = recorded_call(acme, "card_number")

    transcription.transcribe_call(call.pk)

    transcript = Transcript.objects.get(call=call)
    assert "[CARD]" in transcript.text
    assert transcript.redaction_counts.get("card") == 1
    assert transcript.redaction_spans and transcript.redaction_spans[0]["kind"] == "card"
    row = json.dumps(model_to_dict(Transcript.objects.get(pk=transcript.pk)), default=str)
    assert "4111" not in row and "1111 1111" not in row


def test_a_second_run_finds_nothing_to_do(acme, sandbox):
    call = recorded_call(acme, "booked")
    transcription.transcribe_call(call.pk)

    assert transcription.transcribe_call(call.pk) is None
    assert Transcript.objects.filter(call=call).count() == 1


def test_a_transient_outage_backs_off_then_recovers(acme, sandbox, run_tasks):
    # given Deepgram answers 500 to three attempts (the SDK retries once within each)
    sandbox.inject("deepgram.listen", "500", count=6)
    call = recorded_call(acme, "booked")

    # when each attempt fails, the call waits in recorded with a backoff, not lost
    for attempt in (1, 2, 3):
        with run_tasks():
            if attempt == 1:
                assert transcription.transcribe_call(call.pk) == Stage.RECORDED
            else:
                make_due(call)
                assert sweeps.retry_due_calls()["enqueued"] == 1
        call.refresh_from_db()
        assert (call.stage, call.attempts) == (Stage.RECORDED, attempt)
        assert "HTTP 500" in call.last_error and call.next_attempt_at is not None
        assert not Transcript.objects.filter(call=call).exists()
        # and not enqueued again until its backoff is over
        assert sweeps.retry_due_calls()["enqueued"] == 0

    # then once Deepgram recovers, the reaper's next run completes it
    make_due(call)
    with run_tasks() as worker:
        sweeps.retry_due_calls()
    assert worker.count(TRANSCRIBE) == 1
    call.refresh_from_db()
    assert (call.stage, call.attempts, call.last_error) == (Stage.TRANSCRIBED, 4, "")
    assert Transcript.objects.filter(call=call).count() == 1


def test_a_permanent_error_fails_at_once_with_the_reason(acme, sandbox):
    call = recorded_call(acme, audio=b"RIFF not a sandbox scenario at all")

    assert transcription.transcribe_call(call.pk) == Stage.FAILED

    call.refresh_from_db()
    assert (call.stage, call.attempts) == (Stage.FAILED, 1)
    assert "HTTP 400" in call.last_error and "HTTP 400" in call.stage_reason
    assert not Transcript.objects.filter(call=call).exists()
    assert history(call)[-1] == (Stage.TRANSCRIBING, Stage.FAILED)


def test_the_last_attempt_fails_the_call(acme, sandbox, settings):
    settings.PIPELINE_MAX_ATTEMPTS = 2
    sandbox.inject("deepgram.listen", "500", count=4)
    call = recorded_call(acme, "booked")

    transcription.transcribe_call(call.pk)
    make_due(call)
    assert transcription.transcribe_call(call.pk) == Stage.FAILED

    call.refresh_from_db()
    assert call.stage == Stage.FAILED and call.last_error.startswith("gave up after 2 attempts")


def test_a_claimed_call_is_left_to_its_worker(acme, sandbox):
    call = recorded_call(acme, "booked")
    stages.claim(call, Stage.TRANSCRIBING)

    assert transcription.transcribe_call(call.pk) is None
    assert Call.objects.get(pk=call.pk).stage == Stage.TRANSCRIBING


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_make_one_transcript(acme, sandbox):
    # given Deepgram is slow, so both workers are in flight at once
    sandbox.inject("deepgram.listen", "latency", count=2, delay_seconds=0.5)
    call = recorded_call(acme, "booked")
    results = []

    def work():
        from django.db import connection

        try:
            results.append(transcription.transcribe_call(call.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results, key=str) == sorted([Stage.TRANSCRIBED, None], key=str)
    assert Transcript.objects.filter(call=call).count() == 1
    assert Call.objects.get(pk=call.pk).attempts == 1


@pytest.mark.parametrize(
    "key", [key for key, found in scenarios.SCENARIOS.items() if found.utterances]
)
def test_speaker_roles_match_every_sandbox_script(key, acme, sandbox):
    call = recorded_call(acme, key)

    transcription.transcribe_call(call.pk)

    transcript = Transcript.objects.get(call=call)
    script = scenarios.SCENARIOS[key].utterances
    assert [u["role"] for u in transcript.utterances] == [u.role for u in script]
