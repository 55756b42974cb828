"""Typed Bland payloads (providers.md §6), parsed leniently.

Bland's call object varies between API versions and call outcomes (``call_length`` is
minutes as a float, ``corrected_duration`` seconds as a string, many fields null or
absent before the call ends), so every field Otto does not strictly need is optional and
unknown fields are kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class SendCallRequest(BaseModel):
    """``POST /v1/calls``. Either ``task`` or ``pathway_id`` is required."""

    model_config = ConfigDict(populate_by_name=True)

    phone_number: str
    task: str | None = None
    pathway_id: str | None = None
    start_node_id: str | None = None
    voice: str | None = None
    first_sentence: str | None = None
    from_number: str | None = Field(default=None, serialization_alias="from")
    record: bool = True
    webhook: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    request_data: dict[str, Any] = Field(default_factory=dict)
    max_duration: int | None = None  # minutes
    wait_for_greeting: bool | None = None
    language: str | None = None
    voicemail_message: str | None = None
    # {"name": "what to extract"}: Bland answers it in the call object's ``analysis``.
    analysis_schema: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class SendCallResponse(_Lenient):
    status: str
    call_id: str
    batch_id: str | None = None
    message: str | None = None


class TranscriptLine(_Lenient):
    id: int | str | None = None
    text: str = ""
    user: str = ""  # "user", "assistant", "robot" or "agent-action"
    created_at: datetime | None = None


class Call(_Lenient):
    """A call, as ``GET /v1/calls/{id}`` returns it and the post-call webhook sends it."""

    call_id: str
    status: str | None = None
    queue_status: str | None = None
    completed: bool = False
    inbound: bool = False
    to: str | None = None
    from_number: str | None = Field(default=None, alias="from")
    call_length: float | None = None  # minutes
    corrected_duration: float | None = None  # seconds (Bland sends a string)
    created_at: datetime | None = None
    started_at: datetime | None = None
    end_at: datetime | None = None
    answered_by: str | None = None
    record: bool | None = None
    recording_url: str | None = None
    summary: str | None = None
    price: float | None = None
    call_ended_by: str | None = None
    error_message: str | None = None
    concatenated_transcript: str | None = None
    transcripts: list[TranscriptLine] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    request_data: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    # What ``analysis_schema`` asked for, when Bland extracted it.
    analysis: dict[str, Any] = Field(default_factory=dict)

    @field_validator("call_length", "corrected_duration", "price", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        # "45", 45, 45.0, "" and null all occur; a blank means unknown, not zero.
        if value in ("", None):
            return None
        return value

    @field_validator("metadata", "request_data", "variables", "analysis", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {}

    @field_validator("transcripts", mode="before")
    @classmethod
    def _lines(cls, value: Any) -> Any:
        return value if isinstance(value, list) else []

    @property
    def duration_seconds(self) -> float | None:
        if self.corrected_duration is not None:
            return self.corrected_duration
        return self.call_length * 60 if self.call_length is not None else None
