"""The analysis stage on the sandbox's OpenAI: transcribed → analyzing → analyzed, one
current versioned analysis per call, and every way a provider can misbehave."""

from __future__ import annotations

import datetime
import json
import logging
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from analysis import services
from analysis.models import CallAnalysis
from calls import stages, sweeps, transcription
from calls.models import Call, CallStageChange
from integrations.sandbox import scenarios
from integrations.sandbox.analysis_rules import SIMULATED_MODEL
from tests.analysis.conftest import ANALYZE, transcribed_call
from tests.pipeline.conftest import make_due, recorded_call

Stage = Call.Stage


def history(call) -> list[tuple[str, str]]:
    changes = CallStageChange.objects.filter(call=call).order_by("created_at", "pk")
    return list(changes.values_list("from_stage", "to_stage"))


def test_transcription_hands_the_call_to_analysis_on_its_queue(acme, sandbox, run_tasks):
    call = recorded_call(acme, "booked")
    with run_tasks() as worker:
        worker.held = {ANALYZE}
        transcription.transcribe_call(call.pk)

    assert ("analysis", ANALYZE, (call.pk,)) in worker.pushed
    call.refresh_from_db()
    assert (call.stage, call.attempts) == (Stage.TRANSCRIBED, 0)


def test_a_booked_call_is_analysed_once_with_cited_fields(acme, sandbox, openai_requests):
    call = transcribed_call(acme, "booked")

    assert services.analyze_call(call.pk) == Stage.ANALYZED

    call.refresh_from_db()
    # The hand-off to the applied stage restarts the attempts: analysis' were its own.
    assert (call.stage, call.attempts, call.next_attempt_at) == (Stage.ANALYZED, 0, None)
    assert history(call)[-2:] == [
        (Stage.TRANSCRIBED, Stage.ANALYZING),
        (Stage.ANALYZING, Stage.ANALYZED),
    ]
    analysis = CallAnalysis.objects.get(call=call)
    assert (analysis.version, analysis.is_current, analysis.company_id) == (1, True, acme.pk)
    assert (analysis.analyzer, analysis.model) == ("openai", SIMULATED_MODEL)
    assert analysis.prompt_version == services.PROMPT_VERSION
    # Expectations read from the scenario's script, not from the sandbox's rules: Dana
    # agrees to "tomorrow at 9 am" at 1420 Maple Street and raises no objection.
    assert analysis.booking_status == "booked"
    assert analysis.objections == []
    assert analysis.appointment["start"] == "2026-03-07T09:00:00-05:00"
    assert analysis.appointment["end"] == "2026-03-07T10:00:00-05:00"
    assert analysis.appointment["address"] == "1420 Maple Street"
    assert analysis.service_address == "1420 Maple Street"
    assert analysis.qualified is True and analysis.lead_quality == "hot"
    assert "Simulated" in analysis.summary
    # Cited, and every citation is an utterance of the stored transcript.
    count = len(call.transcript.utterances)
    assert {"booking_status", "appointment", "service_address"} <= set(analysis.citations)
    assert all(0 <= i < count for ids in analysis.citations.values() for i in ids)
    booked_line = call.transcript.utterances[analysis.citations["appointment"][-1]]["text"]
    assert "tomorrow at 9 am" in booked_line
    assert analysis.input_tokens > 0 and analysis.output_tokens > 0
    # The sandbox's model has no price: recorded at 0, not guessed.
    assert analysis.cost_usd == Decimal(0)
    # One request, sent with the strict structured-output schema.
    (body,) = openai_requests()
    sent = json.loads(body)
    assert sent["text"]["format"]["type"] == "json_schema"
    assert sent["text"]["format"]["strict"] is True
    assert sent["input"].splitlines()[0].startswith("[0] agent: Thanks for calling Acme")


def test_the_prompt_sent_to_openai_contains_no_card_number(acme, sandbox, openai_requests):
    call = transcribed_call(acme, "card_number")

    services.analyze_call(call.pk)

    (body,) = openai_requests()
    assert "[CARD]" in body
    assert "4111" not in body and "1111 1111" not in body
    analysis = CallAnalysis.objects.get(call=call)
    # Greg books the tune-up for Friday at 2 pm; the call is on a Friday, so next week's.
    assert analysis.booking_status == "booked"
    assert analysis.appointment["start"] == "2026-03-13T14:00:00-04:00"


def test_a_redelivered_task_gives_one_analysis(acme, sandbox, openai_requests):
    call = transcribed_call(acme, "booked")

    assert services.analyze_call(call.pk) == Stage.ANALYZED
    assert services.analyze_call(call.pk) is None

    assert CallAnalysis.objects.filter(call=call).count() == 1
    assert len(openai_requests()) == 1


def test_a_worker_presumed_dead_writes_nothing_and_one_analysis_stays_current(acme, sandbox):
    # given: worker A claimed the call, then the reaper took it back (A presumed dead)
    call = transcribed_call(acme, "booked")
    first = stages.claim(call, Stage.ANALYZING)
    past = timezone.now() - datetime.timedelta(seconds=1)
    Call.objects.filter(pk=call.pk).update(next_attempt_at=past)
    assert sweeps.retry_due_calls()["reclaimed"] == 1
    # when: worker B analyses it, then A wakes up with its finished result
    assert services.analyze_call(call.pk) == Stage.ANALYZED
    from analysis.analyzers import OpenAIAnalyzer

    late = OpenAIAnalyzer().submit(first.call, call.transcript)
    with pytest.raises(stages.LeaseLost):
        services.record_analysis(first, late)
    # then
    assert CallAnalysis.objects.filter(call=call).count() == 1
    assert CallAnalysis.objects.filter(call=call, is_current=True).count() == 1


def test_two_current_analyses_are_refused_by_the_database(acme, sandbox):
    call = transcribed_call(acme, "booked")
    services.analyze_call(call.pk)
    current = CallAnalysis.objects.get(call=call)

    with pytest.raises(IntegrityError), transaction.atomic():
        CallAnalysis.objects.create(
            company=acme,
            call=call,
            version=2,
            is_current=True,
            analyzer="openai",
            prompt_version="x",
            lead_quality=current.lead_quality,
            booking_status=current.booking_status,
        )


def test_a_reanalysis_adds_a_version_and_keeps_the_overrides(acme, sandbox, acme_manager):
    call = transcribed_call(acme, "booked")
    services.analyze_call(call.pk)
    first = CallAnalysis.objects.get(call=call)
    services.update_overrides(
        acme, first, {"booking_status": "not_booked"}, user=acme_manager.membership.user
    )
    # ops send the call back to transcribed (a new prompt version, say)
    Call.objects.filter(pk=call.pk).update(stage=Stage.TRANSCRIBED, attempts=0)

    assert services.analyze_call(call.pk) == Stage.ANALYZED

    versions = list(CallAnalysis.objects.filter(call=call).order_by("version"))
    assert [(a.version, a.is_current) for a in versions] == [(1, False), (2, True)]
    assert versions[1].overrides == {"booking_status": "not_booked"}
    assert versions[1].booking_status == "booked"  # the model's value is kept beside it


def test_the_reaper_takes_back_a_call_stuck_analyzing_and_enqueues_it(acme, sandbox, worker):
    call = transcribed_call(acme, "booked")
    stages.claim(call, Stage.ANALYZING)
    Call.objects.filter(pk=call.pk).update(next_attempt_at=timezone.now())

    with transaction.atomic():
        counts = sweeps.retry_due_calls(now=timezone.now() + datetime.timedelta(seconds=1))

    call.refresh_from_db()
    assert counts["reclaimed"] == 1 and call.stage == Stage.TRANSCRIBED
    assert "analyzing passed its deadline" in call.stage_reason


def test_the_reaper_enqueues_due_transcribed_calls_on_the_analysis_queue(
    acme, sandbox, django_capture_on_commit_callbacks, worker
):
    call = transcribed_call(acme, "booked")
    make_due(call)

    with django_capture_on_commit_callbacks(execute=True):
        counts = sweeps.retry_due_calls()

    assert counts["enqueued"] >= 1
    assert ("analysis", ANALYZE, (call.pk,)) in worker.pushed


# --- parking: the analyzer cannot run for this company ----------------------------------


def test_no_openai_key_parks_the_call_visibly_without_an_error(acme, sandbox, settings, caplog):
    call = transcribed_call(acme, "booked")
    settings.OPENAI_API_KEYS = []

    with caplog.at_level(logging.INFO):
        assert services.analyze_call(call.pk) == Stage.TRANSCRIBED
        assert services.analyze_call(call.pk) == Stage.TRANSCRIBED  # the recheck

    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBED and call.attempts == 0
    assert "no OpenAI API key" in call.stage_reason and call.last_error == ""
    assert call.next_attempt_at > timezone.now() + datetime.timedelta(minutes=50)
    assert not CallAnalysis.objects.filter(call=call).exists()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # parked once in the history, not once per recheck
    assert history(call).count((Stage.TRANSCRIBED, Stage.TRANSCRIBED)) == 1
    assert sandbox.recorded("openai") == []


# --- provider failures -------------------------------------------------------------------


def test_a_429_rotates_to_the_next_key_and_the_call_is_analysed(acme, sandbox):
    call = transcribed_call(acme, "booked")
    sandbox.inject("openai.responses", "429", count=1)

    assert services.analyze_call(call.pk) == Stage.ANALYZED

    keys = [r["headers"]["authorization"] for r in sandbox.recorded("openai")]
    assert len(keys) == 2 and keys[0] != keys[1]


@pytest.mark.parametrize("mode", ["500", "timeout"])
def test_a_5xx_or_timeout_backs_off_at_transcribed(acme, sandbox, mode):
    call = transcribed_call(acme, "booked")
    sandbox.inject("openai.responses", mode, count=1, delay_seconds=3)

    assert services.analyze_call(call.pk) == Stage.TRANSCRIBED

    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBED and call.attempts == 1
    assert call.next_attempt_at > timezone.now() and call.last_error.startswith("openai:")
    # due again after the backoff: the next attempt succeeds
    make_due(call)
    assert services.analyze_call(call.pk) == Stage.ANALYZED


def test_a_malformed_body_counts_as_an_attempt_with_its_error(acme, sandbox):
    call = transcribed_call(acme, "booked")
    sandbox.inject("openai.responses", "malformed", count=1)

    assert services.analyze_call(call.pk) == Stage.TRANSCRIBED

    call.refresh_from_db()
    assert call.attempts == 1 and "malformed response body" in call.last_error
    assert not CallAnalysis.objects.filter(call=call).exists()


def test_output_that_breaks_the_schema_counts_as_an_attempt_then_fails(
    acme, sandbox, settings, monkeypatch
):
    from analysis import schema

    call = transcribed_call(acme, "booked")
    settings.PIPELINE_MAX_ATTEMPTS = 2
    # The sandbox answers with "hot"/"warm"/…; a schema that cannot accept them stands in
    # for a model that answered outside the schema.
    real = schema.CallAnalysisOutput.model_validate_json

    def strict_validate(data, *args, **kwargs):
        parsed = real(data, *args, **kwargs)
        return schema.CallAnalysisOutput.model_validate({**parsed.model_dump(), "urgency": "?"})

    monkeypatch.setattr(schema.CallAnalysisOutput, "model_validate_json", strict_validate)

    assert services.analyze_call(call.pk) == Stage.TRANSCRIBED
    call.refresh_from_db()
    assert "does not match CallAnalysisOutput" in call.last_error
    make_due(call)
    assert services.analyze_call(call.pk) == Stage.FAILED
    call.refresh_from_db()
    assert call.last_error.startswith("gave up after 2 attempts")


def test_citations_of_missing_utterances_are_retried_once_then_fail(acme, sandbox, monkeypatch):
    from analysis import analyzers

    call = transcribed_call(acme, "booked")
    monkeypatch.setattr(analyzers, "check_citations", lambda output, sent: [999])

    assert services.analyze_call(call.pk) == Stage.FAILED

    call.refresh_from_db()
    assert "citations point at no utterance" in call.last_error and "999" in call.last_error
    assert not CallAnalysis.objects.filter(call=call).exists()
    bodies = [json.loads(r["body"]) for r in sandbox.recorded("openai")]
    assert len(bodies) == 2
    assert "do not exist (999)" in bodies[1]["instructions"]


def test_a_citation_outside_the_transcript_is_rejected_before_storage(acme, sandbox):
    from analysis.analyzers import check_citations
    from analysis.schema import CallAnalysisOutput

    sent = frozenset(range(len(scenarios.SCENARIOS["booked"].utterances)))
    output = CallAnalysisOutput.model_validate(
        {
            "summary": "s",
            "sentiment": 0.5,
            "intent": "book",
            "urgency": "normal",
            "qualified": True,
            "lead_quality": "hot",
            "booking_status": "booked",
            "objections": [{"category": "price", "quote": "q", "utterance": 40, "resolved": False}],
            "appointment": None,
            "customer_name": None,
            "service_address": None,
            "pending_actions": [],
            "coaching_tips": [],
            "followup_text": None,
            "sop": {"score": 50, "completed": [], "missed": []},
            "citations": [{"field": "summary", "utterances": [0, 12, 77]}],
        }
    )

    assert check_citations(output, sent) == [12, 40, 77]
