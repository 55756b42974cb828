"""The analysis an analyzer must return, as a pydantic model: OpenAI's structured-output
schema (``strict``: every field required, nullable where it may be unknown) and the one
shape every analyzer's answer is validated into before Otto normalises it.

Free-form maps are not allowed in strict structured outputs, so citations arrive as a
list of ``{field, utterances}`` and are stored as ``{field: [indices]}``.
"""

from __future__ import annotations

from typing import Literal

import pydantic

ObjectionCategory = Literal[
    "price", "timing", "decision_maker", "competitor", "trust", "scope", "financing", "other"
]
# DESIGN.md §9.3: the previous system's 30 canonical action types.
ActionType = Literal[
    "call_back",
    "follow_up_call",
    "check_in",
    "send_quote",
    "send_estimate",
    "send_contract",
    "send_info",
    "send_photos",
    "send_details",
    "schedule_appointment",
    "schedule_visit",
    "reschedule",
    "confirm_appointment",
    "site_visit",
    "inspection",
    "measurement",
    "verify_insurance",
    "verify_details",
    "check_availability",
    "confirm_address",
    "prepare_contract",
    "collect_documents",
    "send_invoice",
    "escalate",
    "manager_review",
    "get_approval",
    "setup_financing",
    "process_payment",
    "send_payment_link",
    "custom",
]
# The key fields that must cite the utterances backing them.
CitedField = Literal[
    "summary",
    "intent",
    "urgency",
    "qualified",
    "lead_quality",
    "booking_status",
    "objections",
    "appointment",
    "customer_name",
    "service_address",
    "pending_actions",
]


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class Objection(_Strict):
    category: ObjectionCategory
    quote: str = pydantic.Field(description="The customer's own words, verbatim.")
    utterance: int = pydantic.Field(description="Index of the utterance the quote is from.")
    resolved: bool = pydantic.Field(description="Whether the agent overcame it on the call.")


class Appointment(_Strict):
    time: str | None = pydantic.Field(
        description=(
            "The agreed day and time as said, normalised: 'tomorrow at 10 am', "
            "'Friday at 2 pm', '2026-03-09 at 14:30'. Never convert it to another time zone."
        )
    )
    duration_minutes: int | None
    address: str | None
    service_type: str | None


class PendingAction(_Strict):
    type: ActionType
    description: str
    due: str | None = pydantic.Field(description="When, as said ('Thursday'), or null.")
    utterance: int | None


class Sop(_Strict):
    score: int = pydantic.Field(description="0 to 100.")
    completed: list[str]
    missed: list[str]


class Citation(_Strict):
    field: CitedField
    utterances: list[int]


class CallAnalysisOutput(_Strict):
    """What the model is asked for (the names are DESIGN.md §9.2's)."""

    summary: str
    sentiment: float = pydantic.Field(description="The customer's sentiment, -1.0 to 1.0.")
    intent: str
    urgency: Literal["low", "normal", "high", "emergency"]
    qualified: bool
    lead_quality: Literal["hot", "warm", "cold", "unqualified"]
    booking_status: Literal["booked", "not_booked", "service_not_offered"]
    objections: list[Objection]
    appointment: Appointment | None
    customer_name: str | None
    service_address: str | None
    pending_actions: list[PendingAction]
    coaching_tips: list[str]
    followup_text: str | None = pydantic.Field(
        description=(
            "For a qualified customer who did not book: a short text message (under 300 "
            "characters) the business could send to win the booking, answering their main "
            "concern; first name only. Null otherwise."
        )
    )
    sop: Sop
    citations: list[Citation]
