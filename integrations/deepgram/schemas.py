"""The typed result of a Deepgram pre-recorded transcription, independent of the SDK."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Utterance(BaseModel):
    """One diarised stretch of speech. ``speaker`` is Deepgram's index, not a role."""

    model_config = ConfigDict(frozen=True)

    speaker: int
    start: float
    end: float
    text: str
    confidence: float | None = None


class Transcription(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str
    text: str
    duration: float | None
    utterances: list[Utterance]
    model: str | None = None
    language: str | None = None

    @property
    def speakers(self) -> list[int]:
        return sorted({u.speaker for u in self.utterances})
