"""Which diarised speaker is the company's CSR (``agent``) and which the ``customer``.

Deepgram numbers speakers 0, 1, … in order of appearance, so the number says nothing about
the role. Each speaker is scored on transparent evidence: phrases agents say (greetings,
intake and booking language) count up, phrases customers say (their own equipment, prices,
call-back requests) count down, each rule at most once per speaker so a long talker does not
win on volume. The callee usually speaks first (the CSR answering an inbound call, the
customer's "hello?" on an outbound one), which is a light prior that mostly breaks ties.

The most agent-like speaker is the agent and the least agent-like the customer; any further
speaker (a transfer, a technician on speaker) goes by the sign of their own score. The
confidence is the margin between them squashed into 0..1, so a "hello" / "hi" exchange
decided by who spoke first stays low.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

AGENT, CUSTOMER = "agent", "customer"
CALLEE = "callee"  # a voicemail greeting belongs to whoever was called

FIRST_SPEAKER_WEIGHT = 1.0  # who speaks first: a tie-breaker, not a verdict
LONE_SPEAKER_WEIGHT = 4.0  # a one-speaker recording is a voicemail; direction says whose

_DAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|tomorrow)"


@dataclass(frozen=True)
class _Rule:
    label: str
    side: str  # AGENT, CUSTOMER or CALLEE
    weight: float
    pattern: re.Pattern[str]
    opening: bool  # only counts in the speaker's first utterance


def _rule(label: str, side: str, weight: float, regex: str, *, opening: bool = False) -> _Rule:
    return _Rule(label, side, weight, re.compile(regex, re.IGNORECASE), opening)


RULES: tuple[_Rule, ...] = (
    _rule("greeting", AGENT, 4, r"\bthanks?(?: you)? for calling\b", opening=True),
    # "Acme Heating and Air, this is Kevin." / "Acme Heating and Air, how can I help?"
    _rule(
        "company opener",
        AGENT,
        3,
        r"^(?!(?:hi|hello|hey|yes|yeah|sure|oh|okay|um|uh|so|well|right)\b)"
        r"[\w&'.-]+(?: [\w&'.-]+){0,5},"
        r" (?:this is (?-i:[A-Z])\w*|how (?:can|may) I help|good (?:morning|afternoon))",
        opening=True,
    ),
    _rule("introduction", AGENT, 3, r"\bthis is \w+(?: \w+)? (?:from|with|calling from) \w"),
    _rule("introduction", AGENT, 1, r"\bthis is (?-i:[A-Z][a-z]+)|\b(?-i:[A-Z][a-z]+) speaking\b"),
    _rule("offer to help", AGENT, 3, r"\bhow (?:can|may) (?:I|we) help|\b(?:I can|happy to) help"),
    _rule(
        "intake",
        AGENT,
        2,
        r"\b(?:can|could|may) I (?:get|have|grab|confirm) (?:your|the)\b|\bbest number\b"
        r"|\bwhat(?:'s| is) (?:the|your) (?:service )?(?:address|name|number)\b|\band your name\?",
    ),
    _rule("booking", AGENT, 3, r"\byou(?:'re| are) (?:all set|booked|scheduled|confirmed)\b"),
    _rule(
        "company voice",
        AGENT,
        2,
        r"\bour (?:technicians?|techs?|comfort advisor|advisor|install\w*|diagnostic|team|crew"
        r"|pricing|rates?|service)\b|\bwe (?:do(?:n't| not)?|only|also) (?:service|offer|install"
        r"|repair|handle)\b|\bwe can (?:send|remove|schedule)\b",
    ),
    _rule(
        "availability",
        AGENT,
        2,
        rf"\bwe have availability\b|\bI have (?:a technician|an opening|{_DAY})\b"
        rf"|\bI (?:can|could) do {_DAY}\b",
    ),
    _rule("hold", AGENT, 1, r"\bthanks? (?:you )?for holding\b|\blet me pull up\b"),
    _rule("call us back", AGENT, 2, r"\bcall us (?:back )?at\b|\bgive us a call\b"),
    _rule("voicemail greeting", CALLEE, 3, r"\byou(?:'ve| have) reached|\bafter the (?:tone|beep)"),
    _rule("reason for call", CUSTOMER, 3, r"\bI(?:'m| am| was) calling (?:about|because|to|for)\b"),
    _rule(
        "own equipment",
        CUSTOMER,
        2,
        r"\bmy (?:AC|A/C|air conditioner|furnace|boiler|heat|heater|heat pump|pool heater"
        r"|water heater|roof|pipes?|toilet|sink|drain|thermostat|unit)\b"
        r"|\bwe just (?:bought|moved)\b",
    ),
    _rule(
        "price question",
        CUSTOMER,
        2,
        r"\bhow much\b|\bwhat(?:'s| is) the (?:difference|price|cost)\b"
        r"|\bwhat would (?:it|that|the whole thing) cost\b",
    ),
    _rule(
        "request",
        CUSTOMER,
        2,
        r"\bI need (?:someone|somebody|to (?:book|schedule))\b|\bI'd like to (?:book|schedule)\b"
        r"|\bhow soon can\b|\bwhen could (?:the|someone|you)\b|\bI'm getting quotes\b"
        r"|\bdo you (?:guys )?(?:repair|service|fix|install|do)\b|\bone of your (?:guys|tech)",
    ),
    _rule(
        "own details",
        CUSTOMER,
        2,
        r"\bmy (?:address|name|number|phone number|card number) is\b|\bit's \d+ \w+ \w+"
        r"|\bthis number is fine\b",
    ),
    _rule(
        "is this the company",
        CUSTOMER,
        2,
        r"\bis this (?:the )?[\w&' ]*(?:heating|cooling|air|plumbing|roofing|electric|hvac)\b",
    ),
    _rule("call-back request", CUSTOMER, 3, r"\bcall me back\b|\bgive me a call\b"),
    _rule("hesitation", CUSTOMER, 2, r"\bI need to (?:think|talk)\b|\b(?:another|other) company"),
    _rule("robocall", CUSTOMER, 2, r"\bpress (?:one|1)\b|\bimportant message about your\b"),
)


@dataclass(frozen=True)
class RoleMapping:
    roles: dict[int, str]  # every speaker index present -> "agent" | "customer"
    confidence: float  # 0..1
    method: str  # short explanation, e.g. "greeting: speaker 0 said 'thanks for calling'"


@dataclass(frozen=True)
class _Hit:
    speaker: int
    label: str
    points: float  # positive: agent-like, negative: customer-like
    said: str


def assign_roles(utterances: Sequence[Mapping[str, Any]], *, direction: str) -> RoleMapping:
    """Map each diarised speaker to ``agent`` or ``customer``, with a confidence and a reason."""
    order: list[int] = []  # speakers in order of first appearance
    for utterance in utterances:
        if (speaker := int(utterance.get("speaker") or 0)) not in order:
            order.append(speaker)
    if not order:
        return RoleMapping(roles={}, confidence=0.0, method="no utterances")

    hits = _evidence(utterances, direction)
    score = {s: sum(h.points for h in hits if h.speaker == s) for s in order}
    callee = CUSTOMER if direction == "outbound" else AGENT

    if len(order) == 1:
        (lone,) = order
        # Inbound: the caller's message (or an unknown direction); outbound: the CSR's.
        prior = {"inbound": -1, "outbound": 1}.get(direction, -0.25) * LONE_SPEAKER_WEIGHT
        role = AGENT if score[lone] + prior > 0 else CUSTOMER
        roles = {lone: role}
        margin = abs(score[lone] + prior)
        fallback = f"lone speaker on an {direction or 'unknown-direction'} call"
    else:
        # The callee answers: a light nudge for the first speaker (unknown reads as inbound,
        # as most calls reach Otto through inbound tracking numbers).
        nudge = FIRST_SPEAKER_WEIGHT * (0.5 if not direction else 1)
        score[order[0]] += nudge if callee == AGENT else -nudge
        # Ties go to the earlier speaker, so ranking is independent of Deepgram's numbering.
        agent = max(order, key=lambda s: (score[s], -order.index(s)))
        rest = [s for s in order if s != agent]
        customer = min(rest, key=lambda s: (score[s], order.index(s)))
        roles = {s: AGENT if score[s] > 0 else CUSTOMER for s in rest}
        roles |= {agent: AGENT, customer: CUSTOMER}
        extras = [abs(score[s]) for s in rest if s != customer]
        margin = min([score[agent] - score[customer], *extras])
        fallback = f"first speaker on an {direction or 'unknown-direction'} call"

    support = [h for h in hits if (h.points > 0) == (roles[h.speaker] == AGENT)]
    best = max(support, key=lambda h: abs(h.points), default=None)
    reason = f"{best.label}: speaker {best.speaker} said '{best.said}'" if best else fallback
    return RoleMapping(
        roles={s: roles[s] for s in sorted(roles)},
        confidence=_confidence(margin),
        method=f"{reason} (margin {margin:g})",
    )


def _evidence(utterances: Sequence[Mapping[str, Any]], direction: str) -> list[_Hit]:
    """Each rule's first match per speaker, signed towards the side it points to."""
    callee = CUSTOMER if direction == "outbound" else AGENT
    hits: dict[tuple[int, _Rule], _Hit] = {}
    seen: set[int] = set()
    for utterance in utterances:
        speaker = int(utterance.get("speaker") or 0)
        text = str(utterance.get("text") or "").strip()
        opening = speaker not in seen
        seen.add(speaker)
        for rule in RULES:
            if (speaker, rule) in hits or (rule.opening and not opening):
                continue
            if match := rule.pattern.search(text):
                side = callee if rule.side == CALLEE else rule.side
                points = rule.weight if side == AGENT else -rule.weight
                hits[(speaker, rule)] = _Hit(speaker, rule.label, points, match.group(0))
    return list(hits.values())


def _confidence(margin: float) -> float:
    # Each point of margin removes a fifth of the remaining doubt: 1 point (who spoke first)
    # gives 0.2, a clear greeting plus a customer's question about 0.8, a full call ~0.99.
    return round(min(0.99, 1 - 0.8 ** max(margin, 0.0)), 2)
