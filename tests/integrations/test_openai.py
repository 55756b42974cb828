"""The OpenAI client against the sandbox, and the key rotation it relies on."""

from __future__ import annotations

import logging
import random
from collections import Counter
from typing import Literal

import pydantic
import pytest

from integrations.errors import ProviderError
from integrations.openai.client import OpenAIClient
from integrations.openai.keys import KeyRing, fingerprint, reset_keyrings

BOOKED_CALL = """agent: Thanks for calling Acme Heating and Air, this is Sam.
customer: Hi, my furnace stopped working, there's no heat in the house.
agent: I can get a technician out tomorrow at 9 am. What's the address?
customer: It's 42 Maple Street in Springfield.
agent: Great, you're all set for tomorrow at 9 am at 42 Maple Street.
customer: Perfect, thank you."""

PRICE_CALL = """agent: Acme Heating, how can I help?
customer: I need a new AC unit but your quote seems really expensive.
agent: We do offer financing.
customer: I need to talk to my wife first. Can you call me back next week?"""


class Objection(pydantic.BaseModel):
    category: Literal["price", "timing", "decision_maker", "competitor", "trust", "other"]
    quote: str


class Appointment(pydantic.BaseModel):
    time: str | None
    address: str | None


class CallAnalysis(pydantic.BaseModel):
    summary: str
    sentiment: Literal["positive", "neutral", "negative"]
    lead_quality: Literal["hot", "warm", "cold"]
    booking_status: Literal["booked", "not_booked", "service_not_offered"]
    objections: list[Objection]
    requested_appointment: Appointment | None
    pending_actions: list[str]
    card_number_mentioned: bool
    confidence: float = pydantic.Field(ge=0, le=1)


class Pickier(pydantic.BaseModel):
    """Validates something the JSON schema cannot express, so the sandbox cannot satisfy it."""

    summary: str

    @pydantic.field_validator("summary")
    @classmethod
    def must_be_short(cls, value: str) -> str:
        if len(value) > 5:
            raise ValueError("summary too long")
        return value


@pytest.fixture(autouse=True)
def _fresh_keyrings():
    reset_keyrings()
    yield
    reset_keyrings()


def keys_used(sandbox) -> list[str]:
    return [
        r["headers"]["authorization"].removeprefix("Bearer ") for r in sandbox.recorded("openai")
    ]


def analyse(api="responses", text=BOOKED_CALL, schema=CallAnalysis):
    return OpenAIClient.from_settings().parse(
        schema, instructions="Analyse this call.", input=text, api=api
    )


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_structured_output_is_parsed_with_usage(sandbox, api):
    result = analyse(api)

    assert isinstance(result.parsed, CallAnalysis)
    assert result.parsed.booking_status == "booked"
    assert result.parsed.lead_quality == "hot"
    assert result.parsed.requested_appointment is not None
    assert result.parsed.requested_appointment.address == "42 Maple Street"
    assert "Simulated" in result.parsed.summary
    assert result.model == "otto-sandbox-rules-v1"
    assert result.input_tokens > 0 and result.output_tokens > 0
    assert result.total_tokens == result.input_tokens + result.output_tokens
    endpoint = "openai.responses" if api == "responses" else "openai.chat"
    assert len(sandbox.recorded(endpoint)) == 1


def test_price_objection_is_quoted(sandbox):
    result = analyse(text=PRICE_CALL)

    assert result.parsed.booking_status == "not_booked"
    assert result.parsed.lead_quality == "warm"
    categories = [o.category for o in result.parsed.objections]
    assert categories == ["price", "decision_maker"]
    assert "expensive" in result.parsed.objections[0].quote
    assert "Call the customer back" in result.parsed.pending_actions


def test_429_on_one_key_rotates_to_the_next(sandbox):
    sandbox.inject("openai.responses", "429", count=1)

    result = analyse()

    assert result.parsed.booking_status == "booked"
    first, second = keys_used(sandbox)
    assert first != second


def test_429_on_every_key_is_transient_with_retry_after(sandbox):
    sandbox.inject("openai", "429", count=2)  # the sandbox has two keys

    with pytest.raises(ProviderError) as caught:
        analyse()

    assert caught.value.permanent is False
    assert caught.value.status == 429
    assert 0 < caught.value.retry_after <= 1  # the sandbox's Retry-After, not the default
    assert len(set(keys_used(sandbox))) == 2


@pytest.mark.parametrize(
    ("mode", "status", "text"),
    [("500", 500, "Internal server error"), ("timeout", None, "timed out")],
)
def test_server_errors_and_timeouts_are_transient(sandbox, mode, status, text):
    sandbox.inject("openai.chat", mode, count=1, delay_seconds=3)

    with pytest.raises(ProviderError) as caught:
        analyse("chat")

    assert caught.value.permanent is False
    assert caught.value.status == status
    assert text in str(caught.value)


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_malformed_body_is_a_clear_permanent_error(sandbox, api):
    sandbox.inject("openai", "malformed", count=1)

    with pytest.raises(ProviderError) as caught:
        analyse(api)

    assert caught.value.permanent is True
    assert "malformed response body" in caught.value.detail


def test_output_that_fails_validation_is_a_clear_error(sandbox):
    with pytest.raises(ProviderError) as caught:
        analyse(schema=Pickier)

    assert caught.value.permanent is True
    assert "does not match Pickier" in caught.value.detail


def test_unauthorized_everywhere_is_permanent(sandbox, settings):
    settings.OPENAI_API_KEYS = ["sk-live-wrong-1", "sk-live-wrong-2"]

    with pytest.raises(ProviderError) as caught:
        analyse()

    assert caught.value.permanent is True
    assert caught.value.status == 401


def test_round_robin_spreads_calls_evenly(sandbox, settings):
    settings.OPENAI_API_KEYS = ["sk-sandbox-a", "sk-sandbox-b", "sk-sandbox-c"]
    settings.OPENAI_KEY_ROTATION_STRATEGY = "round_robin"

    for _ in range(9):
        analyse()

    assert Counter(keys_used(sandbox)) == {"sk-sandbox-a": 3, "sk-sandbox-b": 3, "sk-sandbox-c": 3}


def test_a_rate_limited_key_is_skipped_until_its_cooldown_ends(sandbox):
    # given a ring on a clock we control, and a 429 (Retry-After: 1) on key a
    now = [1000.0]
    ring = KeyRing(["sk-sandbox-a", "sk-sandbox-b", "sk-sandbox-c"], clock=lambda: now[0])
    client = OpenAIClient(
        base_url=OpenAIClient.from_settings().base_url, keyring=ring, model="m", timeout=2.0
    )
    sandbox.inject("openai.responses", "429", count=1)

    def run(times: int) -> list[str]:
        sandbox.requests.clear()
        for _ in range(times):
            client.parse(CallAnalysis, instructions="x", input=BOOKED_CALL)
        return keys_used(sandbox)

    # when a gets the 429, the same call moves on to b
    assert run(1) == ["sk-sandbox-a", "sk-sandbox-b"]
    # then a is skipped while it cools down
    assert run(4) == ["sk-sandbox-c", "sk-sandbox-b", "sk-sandbox-c", "sk-sandbox-b"]
    # and used again once the Retry-After has passed
    now[0] += 1.01
    assert "sk-sandbox-a" in run(3)


def test_a_revoked_key_is_dropped_and_never_logged(sandbox, settings, caplog):
    settings.OPENAI_API_KEYS = ["sk-sandbox-a", "sk-sandbox-b", "sk-sandbox-c"]
    sandbox.state["openai"]["revoked"] = {"sk-sandbox-b"}

    with caplog.at_level(logging.DEBUG):
        for _ in range(6):
            analyse()

    used = keys_used(sandbox)
    assert used.count("sk-sandbox-b") == 1  # the one 401, then never again
    assert len(used) == 7
    assert "sk-sandbox-b" not in caplog.text
    assert fingerprint("sk-sandbox-b") in caplog.text


def test_least_used_prefers_the_least_used_key():
    now = [0.0]
    ring = KeyRing(["a", "b", "c"], "least_used", clock=lambda: now[0])

    assert [ring.acquire() for _ in range(3)] == ["a", "b", "c"]
    ring.cool_down("a", 10)
    assert [ring.acquire() for _ in range(4)] == ["b", "c", "b", "c"]
    now[0] = 11
    # a is behind by two uses, so it catches up first; then ties go to configuration order
    assert [ring.acquire() for _ in range(4)] == ["a", "a", "a", "b"]


def test_random_uses_every_usable_key_and_only_those():
    rng = random.Random(7)  # noqa: S311 - a seeded test double, not security
    ring = KeyRing(["a", "b", "c", "d"], "random", clock=lambda: 0.0, rng=rng)
    ring.revoke("d")

    picks = Counter(ring.acquire() for _ in range(300))

    assert set(picks) == {"a", "b", "c"}
    assert min(picks.values()) > 60  # spread, not stuck on one key


def test_every_key_cooling_or_dead_raises():
    now = [0.0]
    ring = KeyRing(["a", "b"], clock=lambda: now[0])
    ring.cool_down("a", 5)
    ring.cool_down("b")  # no Retry-After: the default cool-down

    with pytest.raises(ProviderError) as cooling:
        ring.acquire()
    assert cooling.value.permanent is False and cooling.value.retry_after == 5

    ring.revoke("a")
    ring.revoke("b")
    with pytest.raises(ProviderError) as dead:
        ring.acquire()
    assert dead.value.permanent is True


def test_unknown_strategy_is_rejected():
    with pytest.raises(ValueError, match="strategy"):
        KeyRing(["a"], "fastest")
