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
    """``transcript`` is the redacted call, one ``[index] role: text`` line per utterance;
    ``utterances`` the same as ``{index, role, text}``."""

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
    utterance: int | None = None  # index into the utterances sent
    resolved: bool = False


class RequestedAppointment(_Lenient):
    time: str | None = None  # as said: "tomorrow at 9 am"
    address: str | None = None
    service_type: str | None = None
    duration_minutes: int | None = None


class PendingAction(_Lenient):
    type: str | None = None
    description: str = ""
    due: str | None = None
    utterance: int | None = None


class Sop(_Lenient):
    score: int = 0
    completed: list[str] = Field(default_factory=list)
    missed: list[str] = Field(default_factory=list)


class Citation(_Lenient):
    field: str
    utterances: list[int] = Field(default_factory=list)


class Usage(_Lenient):
    input_tokens: int = 0
    output_tokens: int = 0


class AnalysisResult(_Lenient):
    """A completed analysis job's result. Utterance indices (objections, actions,
    citations) point into the ``utterances`` of the request. Values are Shunya's own
    (labels, categories); Otto's analyzer maps them onto its schema."""

    summary: str = ""
    sentiment: str | float | None = None  # a label ("positive") or a score
    sentiment_score: float | None = None  # -1.0 … 1.0
    intent: str | None = None
    urgency: str | None = None
    qualified: bool | None = None
    lead_quality: str | None = None
    booking_status: str | None = None
    objections: list[Objection] = Field(default_factory=list)
    requested_appointment: RequestedAppointment | None = None
    customer_name: str | None = None
    service_address: str | None = None
    pending_actions: list[PendingAction | str] = Field(default_factory=list)
    coaching_tips: list[str] = Field(default_factory=list)
    sop: Sop | None = None
    citations: list[Citation] = Field(default_factory=list)
    model: str | None = None
    usage: Usage | None = None
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
