"""Typed Shunya (UWC) payloads.

UWC publishes no wire spec, so Otto fixes one (docs/sandbox.md, "Shunya REST shape"):

- ``POST /api/v1/transcriptions`` :class:`TranscriptionRequest` → 202 :class:`Job`
- ``POST /api/v1/analyses`` :class:`AnalysisRequest` → 202 :class:`Job`
- ``GET /api/v1/jobs/{job_id}`` → 200 :class:`Job` (``result`` set once completed)
- job-complete webhook → :class:`JobEvent`, signed as in :mod:`.signature`

Parsing is lenient (unknown fields are kept, not rejected), so a new field on UWC's side
does not break the pipeline; only what Otto reads is typed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class JobType(StrEnum):
    TRANSCRIPTION = "transcription"
    ANALYSIS = "analysis"


class TranscriptionRequest(BaseModel):
    audio_url: str
    callback_url: str | None = None
    language: str = "en-US"
    diarize: bool = True
    metadata: dict[str, Any] = Field(default_factory=dict)


class AnalysisRequest(BaseModel):
    transcript: str
    callback_url: str | None = None
    utterances: list[dict[str, Any]] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Utterance(_Lenient):
    speaker: int
    start: float
    end: float
    text: str
    confidence: float | None = None
    role: str | None = None  # "agent"/"customer" when UWC could tell


class TranscriptionResult(_Lenient):
    language: str | None = None
    duration: float = 0.0
    text: str = ""
    utterances: list[Utterance] = Field(default_factory=list)
    simulated: bool = False


class Objection(_Lenient):
    category: str
    quote: str = ""


class RequestedAppointment(_Lenient):
    time: str | None = None
    address: str | None = None


class AnalysisResult(_Lenient):
    summary: str = ""
    sentiment: str | None = None
    intent: str | None = None
    lead_quality: Literal["hot", "warm", "cold"] | None = None
    booking_status: Literal["booked", "not_booked", "service_not_offered"] | None = None
    objections: list[Objection] = Field(default_factory=list)
    requested_appointment: RequestedAppointment | None = None
    pending_actions: list[str] = Field(default_factory=list)
    coaching_tips: list[str] = Field(default_factory=list)
    model: str | None = None
    simulated: bool = False


class JobError(_Lenient):
    code: str = "error"
    message: str = ""


class Job(_Lenient):
    job_id: str
    type: JobType
    status: JobStatus
    created_at: datetime | None = None
    completed_at: datetime | None = None
    error: JobError | None = None
    result: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED)

    def transcription(self) -> TranscriptionResult | None:
        """The typed result of a completed transcription job (None before completion)."""
        if self.type is not JobType.TRANSCRIPTION or self.result is None:
            return None
        return TranscriptionResult.model_validate(self.result)

    def analysis(self) -> AnalysisResult | None:
        """The typed result of a completed analysis job (None before completion)."""
        if self.type is not JobType.ANALYSIS or self.result is None:
            return None
        return AnalysisResult.model_validate(self.result)


class JobEvent(_Lenient):
    """The body of a job-complete webhook."""

    event: Literal["job.completed", "job.failed"]
    job: Job
