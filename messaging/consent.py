"""What an inbound text means for consent: a keyword, a free-text revocation, or nothing.

Keywords are the CTIA/Twilio set and match only the whole trimmed body, case-insensitively
("STOP", " stop. " is not a keyword but "Stop" is). Free-text revocations are a small rule
set (docs/messaging.md lists it and its limits): each rule is a phrase a person uses to
withdraw consent, and a negation in front of it ("don't stop texting me") cancels it.
"""

from __future__ import annotations

import re

from messaging.models import ConsentEvent

Action = ConsentEvent.Action
Source = ConsentEvent.Source

OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_KEYWORDS = frozenset({"HELP"})

_CONTACT_VERB = r"(?:text(?:ing)?|messag(?:e|ing)|sms(?:ing)?|contact(?:ing)?|send(?:ing)?)"
_NEGATION = r"(?:don'?t|do\s+not|never|won'?t|not)\s+"

REVOCATIONS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # "please stop texting me", "stop sending me these"
        rf"\bstop\s+{_CONTACT_VERB}\b",
        # "don't text me anymore", "do not contact me"
        rf"\b(?:don'?t|do\s+not|never)\s+{_CONTACT_VERB}\s+(?:me|us|this\s+number)\b",
        # "remove me from your list", "take me off your list"
        r"\b(?:remove|take)\s+(?:me|my\s+number|this\s+number)\s+(?:from|off)\b",
        # "unsubscribe me", "opt me out", "I want to opt out"
        r"\bunsubscribe\s+me\b",
        r"\bopt\s+(?:me\s+)?out\b",
        # "no more texts"
        r"\bno\s+more\s+(?:texts|messages|sms)\b",
        # "lose my number"
        r"\blose\s+my\s+number\b",
    )
)
# "don't stop texting me" and "I won't opt out" keep consent.
_NEGATED = re.compile(rf"\b{_NEGATION}(?:stop|opt|unsubscribe|remove)\b", re.IGNORECASE)


def classify(body: str) -> tuple[str, str] | None:
    """``(action, source)`` of a consent change the text asks for, or None."""
    word = body.strip().upper()
    if word in OPT_OUT_KEYWORDS:
        return Action.OPT_OUT, Source.KEYWORD
    if word in OPT_IN_KEYWORDS:
        return Action.OPT_IN, Source.KEYWORD
    if word in HELP_KEYWORDS:
        return Action.HELP, Source.KEYWORD
    if is_revocation(body):
        return Action.OPT_OUT, Source.FREE_TEXT
    return None


def is_revocation(body: str) -> bool:
    """A free-text withdrawal of consent ("please stop texting me")."""
    text = " ".join(body.replace("\u2019", "'").split())
    if _NEGATED.search(text):
        return False
    return any(rule.search(text) for rule in REVOCATIONS)
