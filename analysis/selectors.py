"""Reads for analyses. The company comes first; every lookup by id includes it."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from analysis.models import CallAnalysis
from calls.models import Call
from otto.models import Company

# The fields an analysis is read as (DESIGN.md §9.2), overrides applied.
FIELDS = (
    "summary",
    "sentiment",
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
    "coaching_tips",
    "sop",
)


def current_analysis(company: Company, call: Call) -> CallAnalysis | None:
    return CallAnalysis.objects.filter(company=company, call=call, is_current=True).first()


def call_analyses(company: Company, call: Call) -> QuerySet[CallAnalysis]:
    """Every version of the call's analysis, newest first."""
    return CallAnalysis.objects.filter(company=company, call=call).order_by("-version")


def effective_fields(analysis: CallAnalysis) -> dict[str, Any]:
    """The analysis as it is read everywhere (API, KPIs, outcomes): a person's override
    wins over the model's value."""
    values = {name: getattr(analysis, name) for name in FIELDS}
    values.update({k: v for k, v in (analysis.overrides or {}).items() if k in FIELDS})
    return values
