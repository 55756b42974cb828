"""Redaction of payment and identity numbers from transcripts, before storage and before
any LLM sees them.

Callers read numbers out loud, so a number is a *run* of tokens: digit groups ("4111",
"4111-1111") and spoken digits ("four one one one", "oh", "double five", "forty-one").
Each run becomes a digit string, and a window of it is replaced with a typed placeholder
when it is:

- ``[CARD]``: 13 to 19 digits that pass the Luhn check and start like a real card (Visa,
  Mastercard, Amex, Discover, JCB, Diners). The issuer check keeps a long order or
  tracking number that passes Luhn by chance (one in ten) readable.
- ``[SSN]``: written ``123-45-6789``, or any 9 digits just after "social security",
  "social" or "SSN".
- ``[CVV]``: 3 or 4 digits just after "CVV", "CVC", "security code" or "code on the back".
- ``[BANK_ACCOUNT]``: 6 to 17 digits just after "account number", "routing number",
  "bank account" or "checking/savings account".

"Just after" means within :data:`CONTEXT_WORDS` words. Phone numbers (10 or 11 digits,
no context) and dates, prices and times are left alone. A number split across two
utterances by diarisation is not joined: each utterance is redacted on its own.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from otto.logging import luhn_ok

CARD, CVV, SSN, BANK_ACCOUNT = "card", "cvv", "ssn", "bank_account"
PLACEHOLDERS = {CARD: "[CARD]", CVV: "[CVV]", SSN: "[SSN]", BANK_ACCOUNT: "[BANK_ACCOUNT]"}
CONTEXT_WORDS = 8

_UNITS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_TEENS = {
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
}  # fmt: skip
_TENS = {
    "twenty": "2", "thirty": "3", "forty": "4", "fifty": "5", "sixty": "6", "seventy": "7",
    "eighty": "8", "ninety": "9",
}  # fmt: skip
_REPEAT = {"double": 2, "triple": 3}

# A word, a digit group (dashes inside: "4111-1111", "123-45-6789"), or any other symbol
# that is not a joiner (a joiner between two numeric tokens keeps them in one number).
_TOKEN = re.compile(r"\d+(?:-\d+)*|[A-Za-z]+(?:-[A-Za-z]+)?|[^\s,.\-–]")
# What may sit between the tokens of one number: spaces, dashes, commas, dots.
_JOINER = re.compile(r"[\s,.\-–]*")

_CONTEXT = {
    SSN: re.compile(r"\b(?:social(?:\s+security)?|ssn|s\s*s\s*n)\b", re.IGNORECASE),
    CVV: re.compile(
        r"\b(?:cvv2?|cvc2?|cid|security\s+code|code\s+on\s+the\s+back|three[-\s]digit\s+code)\b",
        re.IGNORECASE,
    ),
    BANK_ACCOUNT: re.compile(
        r"\b(?:account\s+number|acct\s+number|routing(?:\s+number)?|bank\s+account|"
        r"(?:checking|savings)(?:\s+account)?)\b",
        re.IGNORECASE,
    ),
}
_WRITTEN_SSN = re.compile(r"^\d{3}-\d{2}-\d{4}$")


@dataclass(frozen=True)
class RedactedText:
    text: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RedactedUtterances:
    utterances: list[dict[str, Any]]
    counts: dict[str, int]
    # Where each redaction was, in seconds: {"kind", "utterance", "start", "end"}.
    spans: list[dict[str, Any]]


@dataclass(frozen=True)
class _Token:
    start: int
    end: int
    digits: str  # "" for a token that is not part of a number
    text: str


def redact_text(text: str) -> RedactedText:
    """``text`` with every card, CVV, SSN and bank account number replaced."""
    found = _find(text)
    pieces, cursor = [], 0
    for start, end, kind in found:
        pieces += [text[cursor:start], PLACEHOLDERS[kind]]
        cursor = end
    pieces.append(text[cursor:])
    return RedactedText("".join(pieces), dict(Counter(kind for _, _, kind in found)))


def redact_utterances(utterances: list[dict[str, Any]]) -> RedactedUtterances:
    """Each utterance's ``text`` redacted; the other keys are kept as they are."""
    redacted, spans = [], []
    counts: Counter[str] = Counter()
    for index, utterance in enumerate(utterances):
        result = redact_text(str(utterance.get("text") or ""))
        redacted.append({**utterance, "text": result.text})
        counts.update(result.counts)
        for kind, count in result.counts.items():
            span = {"kind": kind, "utterance": index}
            span |= {"start": utterance.get("start"), "end": utterance.get("end")}
            spans += [span] * count
    return RedactedUtterances(redacted, dict(counts), spans)


# --- finding numbers ---------------------------------------------------------------------


def redact_strings(value: Any) -> Any:
    """``value`` (a decoded JSON document) with every string in it redacted: for a webhook
    body whose text may carry a transcript anywhere."""
    if isinstance(value, str):
        return redact_text(value).text
    if isinstance(value, list):
        return [redact_strings(item) for item in value]
    if isinstance(value, dict):
        return {key: redact_strings(item) for key, item in value.items()}
    return value


def _find(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping ``(start, end, kind)`` character ranges to redact, in order."""
    tokens = _tokens(text)
    found: list[tuple[int, int, str]] = []
    for run in _runs(text, tokens):
        found += _classify(text, run)
    return sorted(found)


def _tokens(text: str) -> list[_Token]:
    tokens = []
    for match in _TOKEN.finditer(text):
        word = match.group()
        tokens.append(_Token(match.start(), match.end(), _digits_of(word), word))
    return _expand_spoken(tokens)


def _digits_of(word: str) -> str:
    if word[0].isdigit():
        return word.replace("-", "")
    lower = word.lower()
    if lower in _UNITS:
        return _UNITS[lower]
    if lower in _TEENS:
        return _TEENS[lower]
    tens, _, unit = lower.partition("-")
    if tens in _TENS and unit in _UNITS and unit not in ("zero", "oh", "o"):
        return _TENS[tens] + _UNITS[unit]
    return ""


def _expand_spoken(tokens: list[_Token]) -> list[_Token]:
    """Join "forty one" into 41 and "double five" into 55, the way people read digits."""
    out: list[_Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        lower = token.text.lower()
        if following is not None and following.digits and len(following.digits) == 1:
            if lower in _TENS and following.text.lower() in _UNITS and following.digits != "0":
                out.append(_Token(token.start, following.end, _TENS[lower] + following.digits, ""))
                index += 2
                continue
            if lower in _REPEAT and not following.text[0].isdigit():
                digits = following.digits * _REPEAT[lower]
                out.append(_Token(token.start, following.end, digits, ""))
                index += 2
                continue
        if lower in _TENS and token.digits == "":
            token = _Token(token.start, token.end, _TENS[lower] + "0", token.text)
        out.append(token)
        index += 1
    return out


def _runs(text: str, tokens: list[_Token]) -> list[list[_Token]]:
    """Maximal sequences of numeric tokens separated only by spaces and punctuation."""
    runs: list[list[_Token]] = []
    current: list[_Token] = []
    for token in tokens:
        joined = current and _JOINER.fullmatch(text, current[-1].end, token.start)
        if token.digits and (not current or joined):
            current.append(token)
            continue
        if current:
            runs.append(current)
        current = [token] if token.digits else []
    if current:
        runs.append(current)
    return runs


def _classify(text: str, run: list[_Token]) -> list[tuple[int, int, str]]:
    before = " ".join(text[max(0, run[0].start - 200) : run[0].start].split()[-CONTEXT_WORDS:])
    digits = "".join(token.digits for token in run)
    span = (run[0].start, run[-1].end)
    if len(run) == 1 and _WRITTEN_SSN.match(run[0].text):
        return [(*span, SSN)]
    cards = _cards(run)
    if cards:
        return cards
    for kind, lengths in ((SSN, (9, 9)), (CVV, (3, 4)), (BANK_ACCOUNT, (6, 17))):
        if lengths[0] <= len(digits) <= lengths[1] and _CONTEXT[kind].search(before):
            return [(*span, kind)]
    return []


def _cards(run: list[_Token]) -> list[tuple[int, int, str]]:
    """Card numbers inside a run: the longest windows of whole tokens that are one."""
    found, start = [], 0
    while start < len(run):
        for end in range(len(run), start, -1):
            digits = "".join(token.digits for token in run[start:end])
            if 13 <= len(digits) <= 19 and _is_card(digits):
                found.append((run[start].start, run[end - 1].end, CARD))
                start = end
                break
        else:
            start += 1
    return found


def _is_card(digits: str) -> bool:
    return _issuer_length_ok(digits) and luhn_ok(digits)


def _issuer_length_ok(digits: str) -> bool:
    length = len(digits)
    if digits.startswith("4"):
        return length in (13, 16, 19)  # Visa
    if digits.startswith(("34", "37")):
        return length == 15  # Amex
    if re.match(r"5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)", digits):
        return length == 16  # Mastercard
    if re.match(r"6011|65|64[4-9]|622", digits):
        return 16 <= length <= 19  # Discover, UnionPay co-branded
    if re.match(r"35(?:2[89]|[3-8]\d)", digits):
        return 16 <= length <= 19  # JCB
    if re.match(r"3(?:0[0-5]|[689])", digits):
        return 14 <= length <= 19  # Diners
    return False
