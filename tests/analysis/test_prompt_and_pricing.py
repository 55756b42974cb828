"""The prompt (numbered, role-labelled, head and tail for long calls) and the price table."""

from __future__ import annotations

import datetime
from decimal import Decimal

from analysis.pricing import cost_usd, price_of
from analysis.prompt import PROMPT_VERSION, build_prompt

STARTED = datetime.datetime(2026, 3, 6, 21, 40, tzinfo=datetime.UTC)


def utterances(n: int, words: int = 5) -> list[dict]:
    return [
        {"role": "agent" if i % 2 == 0 else "customer", "text": " ".join(["word"] * words)}
        for i in range(n)
    ]


def test_each_utterance_is_sent_with_its_index_and_role():
    prompt = build_prompt(
        [{"role": "agent", "text": "Hello,\n  Acme."}, {"role": "", "text": "Hi"}],
        started_at=STARTED,
        timezone="America/New_York",
    )

    assert prompt.transcript == "[0] agent: Hello, Acme.\n[1] unknown: Hi"
    assert prompt.sent == {0, 1} and not prompt.truncated
    # the call's local time, in the tenant's zone
    assert "2026-03-06 16:40 (America/New_York, a Friday)" in prompt.instructions
    assert PROMPT_VERSION


def test_a_long_transcript_keeps_its_head_and_tail_with_a_marker():
    lines = utterances(100, words=20)

    prompt = build_prompt(lines, started_at=STARTED, timezone="UTC", max_chars=2_000)

    assert prompt.truncated and len(prompt.transcript) <= 2_200
    rendered = prompt.transcript.splitlines()
    assert rendered[0].startswith("[0] agent:")
    assert rendered[-1].startswith("[99] customer:")
    (marker,) = [line for line in rendered if "omitted" in line]
    head = max(i for i in prompt.sent if i < 50)
    tail = min(i for i in prompt.sent if i > 50)
    assert marker == f"[… utterances {head + 1}–{tail - 1} omitted …]"
    assert not any(head < i < tail for i in prompt.sent)
    # about 40 % of the budget from the start
    assert 0.3 < len([i for i in prompt.sent if i <= head]) / len(prompt.sent) < 0.5


def test_a_short_transcript_is_sent_whole():
    prompt = build_prompt(utterances(10), started_at=STARTED, timezone="UTC")
    assert not prompt.truncated and "omitted" not in prompt.transcript


def test_cost_by_model_family():
    assert price_of("gpt-4.1-mini-2025-04-14") == (Decimal("0.40"), Decimal("1.60"))
    assert price_of("gpt-4.1-2025-04-14") == (Decimal("2.00"), Decimal("8.00"))
    assert cost_usd("gpt-4.1-mini", 1_000_000, 500_000) == Decimal("1.200000")
    assert cost_usd("gpt-4o-mini", 1234, 567) == Decimal("0.000525")


def test_an_unpriced_model_costs_zero_and_says_so(caplog):
    assert cost_usd("some-new-model", 1000, 1000) == Decimal(0)
    assert "no price for model 'some-new-model'" in caplog.text
