"""Transcript redaction: what a caller reads out loud must never reach storage or an LLM,
and the numbers a call is about (phones, prices, dates, order numbers) must survive."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calls.redaction import redact_text, redact_utterances
from integrations.sandbox import scenarios

REDACTED = [
    # written card numbers, every common grouping
    ("My card is 4111 1111 1111 1111.", "My card is [CARD].", "card"),
    ("card 4111-1111-1111-1111 exp 12/28", "card [CARD] exp 12/28", "card"),
    ("it's 4111111111111111", "it's [CARD]", "card"),
    ("amex 3782 822463 10005 please", "amex [CARD] please", "card"),
    ("mastercard 5555 5555 5555 4444", "mastercard [CARD]", "card"),
    ("discover 6011 1111 1111 1117", "discover [CARD]", "card"),
    # spoken digit by digit, with "oh", doubles and pairs
    (
        "four one one one, one one one one, one one one one, one one one one",
        "[CARD]",
        "card",
    ),
    (
        "five five five five five five five five five five five five four four four four",
        "[CARD]",
        "card",
    ),
    (
        "It's four one double one, one one one one, one one one one, one one one one.",
        "It's [CARD].",
        "card",
    ),
    ("forty-one eleven eleven eleven eleven eleven eleven eleven", "[CARD]", "card"),
    ("the number is 4111 1111 1111 1111 12 28", "the number is [CARD] 12 28", "card"),
    # SSNs
    ("my social is 123-45-6789", "my social is [SSN]", "ssn"),
    ("SSN 078-05-1120.", "SSN [SSN].", "ssn"),
    ("social security number one two three four five six seven eight nine", None, "ssn"),
    # CVV, in context only
    ("and the CVV is 737", "and the CVV is [CVV]", "cvv"),
    ("the security code on it is four nine one", "the security code on it is [CVV]", "cvv"),
    ("the three digit code on the back is 123", "the three digit code on the back is [CVV]", "cvv"),
    # bank accounts, in context only
    ("my routing number is 021000021", "my routing number is [BANK_ACCOUNT]", "bank_account"),
    ("checking account 000123456789", "checking account [BANK_ACCOUNT]", "bank_account"),
]

KEPT = [
    "Call me back at 617-555-0142.",
    "My number is six one seven, five five five, zero one four two.",
    "+1 (617) 555-0142 is the best number",
    "The tune-up is one hundred twenty-nine dollars, or $129.99 with tax.",
    "Expiration twelve twenty-eight.",
    "Can someone come Friday at 2 pm, or on 11/28/2026?",
    "It's 1420 Maple Street, zip 02144.",
    # 16 digits passing Luhn, but no card starts like this: an order number stays readable
    "Your order number is 1234 5678 9012 3452.",
    "Tracking 9400 1000 0000 0000 0000 00.",
    # 16 digits starting like a Visa but failing Luhn
    "reference 4111 1111 1111 1112",
    "I've had the unit for 15 years, it's a 3 ton, 16 SEER",
    "Code 123 on the thermostat",  # no CVV context
    "We have 2 technicians and 450 reviews.",
]


@pytest.mark.parametrize(("text", "expected", "kind"), REDACTED)
def test_numbers_read_out_are_replaced_by_typed_placeholders(text, expected, kind):
    result = redact_text(text)

    if expected is not None:
        assert result.text == expected
    assert result.counts == {kind: 1}
    assert not any(ch.isdigit() for ch in result.text.split("[")[0][-4:])


@pytest.mark.parametrize("text", KEPT)
def test_the_numbers_a_call_is_about_are_kept(text):
    result = redact_text(text)

    assert (result.text, result.counts) == (text, {})


def test_a_card_and_its_cvv_in_one_sentence_are_both_counted():
    result = redact_text("card 4242 4242 4242 4242 and the security code is 123")

    assert result.text == "card [CARD] and the security code is [CVV]"
    assert result.counts == {"card": 1, "cvv": 1}


def test_utterances_keep_their_timing_and_report_where_redactions_were():
    utterances = [
        {"speaker": 0, "start": 0.5, "end": 2.0, "text": "What card would you like to use?"},
        {"speaker": 1, "start": 2.4, "end": 9.1, "text": "It's 4111 1111 1111 1111, CVV 123"},
    ]

    result = redact_utterances(utterances)

    assert result.utterances[0] == utterances[0]
    assert result.utterances[1] == {**utterances[1], "text": "It's [CARD], CVV [CVV]"}
    assert result.counts == {"card": 1, "cvv": 1}
    assert sorted(span["kind"] for span in result.spans) == ["card", "cvv"]
    assert all((s["utterance"], s["start"], s["end"]) == (1, 2.4, 9.1) for s in result.spans)
    assert utterances[1]["text"].startswith("It's 4111")  # the input is not changed


def test_the_sandbox_card_call_comes_out_clean():
    scenario = scenarios.SCENARIOS["card_number"]
    utterances = [
        {"speaker": u.speaker, "start": u.start, "end": u.end, "text": u.text}
        for u in scenario.utterances
    ]

    result = redact_utterances(utterances)

    text = " ".join(u["text"] for u in result.utterances)
    assert "4111" not in text and "[CARD]" in text
    assert result.counts == {"card": 1}
    # the address, price and appointment time are still there
    assert "88 Beacon Street" in text and "Friday at 2 pm" in text


@pytest.mark.parametrize("key", sorted(set(scenarios.SCENARIOS) - {"card_number"}))
def test_the_other_sandbox_calls_are_left_as_they_are(key):
    for utterance in scenarios.SCENARIOS[key].utterances:
        assert redact_text(utterance.text).text == utterance.text


def _luhn_complete(prefix: str, length: int, body: str) -> str:
    partial = (prefix + body)[: length - 1]
    for check in "0123456789":
        candidate = partial + check
        total = 0
        for position, char in enumerate(reversed(candidate)):
            value = int(char) * (2 if position % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


@given(
    body=st.text(alphabet="0123456789", min_size=18, max_size=18),
    prefix=st.sampled_from(["4", "51", "55", "2221", "6011", "34", "37"]),
    grouping=st.sampled_from([" ", "-", ""]),
    words=st.booleans(),
)
def test_any_valid_card_is_redacted_however_it_is_read(body, prefix, grouping, words):
    length = 15 if prefix in ("34", "37") else 16
    number = _luhn_complete(prefix, length, body)
    names = "zero one two three four five six seven eight nine".split()
    if words:
        spoken = " ".join(names[int(digit)] for digit in number)
    else:
        spoken = grouping.join(number[i : i + 4] for i in range(0, len(number), 4))

    result = redact_text(f"sure, it is {spoken}, thanks")

    assert result.text == "sure, it is [CARD], thanks"
