"""Answers that were paid for and not stored (a refusal, output off the schema, citations of
utterances that do not exist) are kept with their tokens and cost, which the budget counts."""

from __future__ import annotations

from decimal import Decimal

from analysis import pricing, selectors, services
from analysis.models import AnalysisFailure, CallAnalysis
from calls.models import Call
from integrations.sandbox.analysis_rules import SIMULATED_MODEL
from tests.analysis.conftest import transcribed_call
from tests.pipeline.conftest import make_due

Stage = Call.Stage


def test_a_refusal_is_kept_with_its_text_and_tokens_and_the_call_retried(acme, sandbox):
    call = transcribed_call(acme)
    sandbox.inject("openai.responses", "refusal", count=1)

    assert services.analyze_call(call.pk) == Stage.TRANSCRIBED

    failure = AnalysisFailure.objects.get(call=call)
    assert failure.company_id == acme.pk and failure.analyzer == "openai"
    assert "model refused: I can't help with that" in failure.error
    assert failure.model == SIMULATED_MODEL
    assert failure.input_tokens > 0 and failure.output_tokens > 0
    call.refresh_from_db()
    assert call.attempts == 1 and "model refused" in call.last_error
    make_due(call)
    assert services.analyze_call(call.pk) == Stage.ANALYZED
    assert AnalysisFailure.objects.filter(call=call).count() == 1


def test_output_off_the_schema_keeps_what_it_cost(acme, sandbox, monkeypatch):
    from analysis import schema

    call = transcribed_call(acme)
    real = schema.CallAnalysisOutput.model_validate_json

    def off_schema(data, *args, **kwargs):
        parsed = real(data, *args, **kwargs)
        return schema.CallAnalysisOutput.model_validate({**parsed.model_dump(), "urgency": "?"})

    monkeypatch.setattr(schema.CallAnalysisOutput, "model_validate_json", off_schema)

    assert services.analyze_call(call.pk) == Stage.TRANSCRIBED

    failure = AnalysisFailure.objects.get(call=call)
    assert "does not match CallAnalysisOutput" in failure.error
    # read from the raw body the SDK could not parse
    assert failure.model == SIMULATED_MODEL and failure.input_tokens > 0
    assert failure.output_tokens > 0


def test_bad_citations_keep_the_tokens_of_both_requests(acme, sandbox, monkeypatch):
    from analysis import analyzers

    good = transcribed_call(acme)
    services.analyze_call(good.pk)
    one_request = CallAnalysis.objects.get(call=good)
    call = transcribed_call(acme)
    monkeypatch.setattr(analyzers, "check_citations", lambda output, sent: [999])

    assert services.analyze_call(call.pk) == Stage.FAILED

    failure = AnalysisFailure.objects.get(call=call)
    assert "citations point at no utterance" in failure.error
    # the same transcript asked twice (the second time with a note)
    assert failure.input_tokens > 2 * one_request.input_tokens
    assert failure.output_tokens == 2 * one_request.output_tokens


def test_a_malformed_body_is_kept_at_no_cost(acme, sandbox):
    call = transcribed_call(acme)
    sandbox.inject("openai.responses", "malformed", count=1)

    services.analyze_call(call.pk)

    failure = AnalysisFailure.objects.get(call=call)
    assert "malformed response body" in failure.error
    assert (failure.input_tokens, failure.output_tokens, failure.cost_usd) == (0, 0, 0)


def test_failed_attempts_count_toward_the_budget(acme, sandbox, settings, monkeypatch):
    monkeypatch.setitem(pricing.PRICES, SIMULATED_MODEL, (Decimal(100), Decimal(100)))
    first, second = transcribed_call(acme), transcribed_call(acme)
    sandbox.inject("openai.responses", "refusal", count=1)
    services.analyze_call(first.pk)
    failure = AnalysisFailure.objects.get(call=first)
    assert failure.cost_usd > 0
    assert selectors.month_spend(acme) == failure.cost_usd
    # a budget the refusal alone has spent
    settings.ANALYSIS_MONTHLY_BUDGET_USD = failure.cost_usd

    assert services.analyze_call(second.pk) == Stage.TRANSCRIBED

    second.refresh_from_db()
    assert "monthly analysis budget" in second.stage_reason
    assert not CallAnalysis.objects.filter(company=acme).exists()
