"""Scripted demo conversations: the sandbox's only source of transcripts and analyses.

Everything here is simulated and labelled so; nothing is presented as real AI output.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Utterance:
    speaker: int  # diarised speaker index, as Deepgram numbers them
    role: str  # "agent" or "customer"
    start: float  # seconds
    end: float
    text: str


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    answered: bool
    direction: str  # "inbound" or "outbound"
    customer_name: str
    customer_phone: str
    utterances: tuple[Utterance, ...] = field(default_factory=tuple)

    @property
    def duration(self) -> float:
        return self.utterances[-1].end if self.utterances else 0.0

    @property
    def transcript(self) -> str:
        return "\n".join(f"{u.role}: {u.text}" for u in self.utterances)


SCENARIOS: dict[str, Scenario] = {}


def scenario_for_audio(data: bytes) -> Scenario | None:
    """The scenario whose generated audio file is ``data`` (None for unknown audio)."""
    raise NotImplementedError


def scenario_for_url(url: str) -> Scenario | None:
    """The scenario behind a sandbox recording URL (None when the URL is not one)."""
    raise NotImplementedError
