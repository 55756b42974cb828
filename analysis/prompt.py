"""The prompt an analyzer is sent: only the redacted transcript, one numbered line per
utterance with its speaker's role, and the call's local start time.

**Versioning.** :data:`PROMPT_VERSION` is stored on every analysis. Change it whenever the
instructions or the transcript's rendering change, so analyses made under different
prompts can be told apart and re-run (``reanalyze --prompt-version``).

**Long transcripts** (the rule the issue asks to state): when the rendered transcript is
longer than :data:`MAX_TRANSCRIPT_CHARS`, the first :data:`HEAD_SHARE` of that budget is
filled from the start of the call and the rest from its end, and one marker line
``[… utterances i–j omitted …]`` stands for what is left out. Openings (greeting, the
problem) and endings (booking, next steps) carry most of what the analysis needs. Indices
are kept, so citations still point into the stored transcript; an index that was not
sent cannot be cited.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

PROMPT_VERSION = "2026-12-01.v2"
# About 15,000 tokens of transcript (OpenAI's ~4 characters per token): every call under
# an hour fits whole, and the cost of an outlier stays bounded.
MAX_TRANSCRIPT_CHARS = 60_000
HEAD_SHARE = 0.4

INSTRUCTIONS = """\
You analyse one phone call between a home-services business and a customer.
The transcript follows, one utterance per line as "[index] role: text"; role is "agent"
(the business) or "customer". Personal data is already redacted as [CARD], [SSN] etc.
The call started at {started} ({timezone}, a {weekday}).

Rules:
- Use only what is said in the transcript. Unknown values are null, never guessed.
- Every objection quotes the customer's own words and gives the index of its utterance.
- The appointment's time is the agreed day and time as the people said it ("tomorrow at
  10 am", "Friday at 2 pm"), or a date relative to the call's start; do not convert it.
- citations: for each of summary, intent, urgency, qualified, lead_quality,
  booking_status, objections, appointment, customer_name, service_address and
  pending_actions that you fill in, list the indices of the utterances that back it.
  Cite only indices that appear in the transcript below.
- sop.score is 0 to 100 for how well the agent followed a good booking call: greet,
  understand the problem, take name and address, offer a time, confirm the booking.
- sentiment is the customer's, from -1.0 (very negative) to 1.0 (very positive).
- followup_text: only when the customer is qualified and did not book, a short text
  message (under 300 characters) from the business that answers their main concern and
  invites them to book; the customer's first name at most, no price or promise that was
  not made on the call. Otherwise null.
{extra}"""

RETRY_NOTE = (
    "- Your previous answer cited utterances that do not exist ({indices}). "
    "Cite only the indices shown in the transcript."
)


@dataclass(frozen=True)
class Prompt:
    instructions: str
    transcript: str
    # The utterance indices the model was shown: the only ones it may cite.
    sent: frozenset[int]
    truncated: bool

    def with_note(self, note: str) -> Prompt:
        return Prompt(
            self.instructions.rstrip("\n") + "\n" + note + "\n",
            self.transcript,
            self.sent,
            self.truncated,
        )


def render_line(index: int, utterance: dict[str, Any]) -> str:
    role = utterance.get("role") or "unknown"
    text = " ".join(str(utterance.get("text", "")).split())
    return f"[{index}] {role}: {text}"


def build_prompt(
    utterances: list[dict[str, Any]],
    *,
    started_at: datetime.datetime,
    timezone: str,
    max_chars: int = MAX_TRANSCRIPT_CHARS,
) -> Prompt:
    """The prompt for a redacted transcript's ``utterances`` (``text`` and ``role``)."""
    lines = [render_line(i, u) for i, u in enumerate(utterances)]
    kept = _head_and_tail(lines, max_chars)
    if len(kept) == len(lines):
        body = "\n".join(lines)
    else:
        parts: list[str] = []
        previous = -1
        for index in kept:
            if index != previous + 1:
                parts.append(f"[… utterances {previous + 1}–{index - 1} omitted …]")
            parts.append(lines[index])
            previous = index
        body = "\n".join(parts)
    local = started_at.astimezone(ZoneInfo(timezone))
    instructions = INSTRUCTIONS.format(
        started=local.strftime("%Y-%m-%d %H:%M"),
        timezone=timezone,
        weekday=local.strftime("%A"),
        extra="",
    )
    return Prompt(instructions, body, frozenset(kept), len(kept) != len(lines))


def _head_and_tail(lines: list[str], max_chars: int) -> list[int]:
    total = sum(len(line) + 1 for line in lines)
    if total <= max_chars:
        return list(range(len(lines)))
    head: list[int] = []
    used = 0
    for index, line in enumerate(lines):
        if used + len(line) + 1 > max_chars * HEAD_SHARE:
            break
        head.append(index)
        used += len(line) + 1
    tail: list[int] = []
    for index in range(len(lines) - 1, (head[-1] if head else -1), -1):
        if used + len(lines[index]) + 1 > max_chars:
            break
        tail.append(index)
        used += len(lines[index]) + 1
    return head + sorted(tail)
