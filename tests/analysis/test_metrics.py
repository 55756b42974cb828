"""A real analysis (the sandbox's OpenAI) shows up in ``GET /metrics``: the tokens it was
billed, their cost, and the provider requests it made, by model and provider, never by tenant."""

from __future__ import annotations

import pytest

from analysis import services
from analysis.analyzers import count_tokens
from analysis.models import CallAnalysis
from calls.models import Call
from tests.analysis.conftest import transcribed_call
from tests.test_metrics import AUTH, TOKEN, samples, value


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def get() -> dict:
        response = client.get("/metrics", **AUTH)
        assert response.status_code == 200
        return samples(response.content.decode())

    return get


def test_an_analysis_counts_its_tokens_and_provider_requests(acme, sandbox, scrape):
    call = transcribed_call(acme, "booked")
    before = scrape()

    assert services.analyze_call(call.pk) == Call.Stage.ANALYZED
    after = scrape()

    analysis = CallAnalysis.objects.get(call=call)
    assert analysis.input_tokens > 0 and analysis.output_tokens > 0
    for kind, tokens in (("input", analysis.input_tokens), ("output", analysis.output_tokens)):
        grew = value(after, "otto_llm_tokens_total", model=analysis.model, kind=kind) - value(
            before, "otto_llm_tokens_total", model=analysis.model, kind=kind
        )
        assert grew == tokens
    cost = value(after, "otto_llm_cost_usd_total", model=analysis.model) - value(
        before, "otto_llm_cost_usd_total", model=analysis.model
    )
    assert cost == pytest.approx(float(analysis.cost_usd))  # the sandbox's model is unpriced
    ok = "otto_provider_requests_total"
    assert value(after, ok, provider="openai", outcome="ok") > value(
        before, ok, provider="openai", outcome="ok"
    )
    assert value(after, "otto_calls_by_stage", stage="analyzed") == 1


def test_a_priced_model_adds_its_cost(scrape, db):
    before = value(scrape(), "otto_llm_cost_usd_total", model="gpt-4.1-mini")
    count_tokens("gpt-4.1-mini", 1_000_000, 500_000)  # $0.40 + $0.80 at the price list
    after = value(scrape(), "otto_llm_cost_usd_total", model="gpt-4.1-mini")
    assert after - before == pytest.approx(1.20)
