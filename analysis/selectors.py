"""Reads for analyses. The company comes first; every lookup by id includes it."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from analysis.models import AnalysisFailure, CallAnalysis
from calls.models import Call, CallStageChange
from otto.models import Company

Stage = Call.Stage
# The stages a call is re-analysed from: analysed (and on), or failed in analysis.
REANALYZABLE = (Stage.ANALYZED, Stage.APPLIED, Stage.DONE)
FAILED_IN_ANALYSIS = (Stage.TRANSCRIBED, Stage.ANALYZING)

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
    "followup_text",
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


def reanalysis_candidates(
    company: Company,
    *,
    since: datetime.date,
    until: datetime.date,
    other_prompt_than: str = "",
    analysed_before: datetime.datetime | None = None,
) -> QuerySet[Call]:
    """The company's calls started from ``since`` to ``until`` (its own time zone, both
    days included) that ``manage.py reanalyze`` runs again, oldest first: transcribed, and
    analysed (``analyzed``/``applied``/``done``) or failed in analysis.

    ``other_prompt_than``: only calls whose current analysis has another prompt version
    (or none). ``analysed_before``: leave out calls whose current analysis was made at or
    after it (the ones an interrupted pass already did).
    """
    zone = ZoneInfo(company.timezone)
    start = datetime.datetime.combine(since, datetime.time.min, zone)
    end = datetime.datetime.combine(until + datetime.timedelta(days=1), datetime.time.min, zone)
    failed_from = (
        CallStageChange.objects.filter(call=OuterRef("pk"), to_stage=Stage.FAILED)
        .order_by("-created_at", "-pk")
        .values("from_stage")[:1]
    )
    calls = (
        Call.objects.filter(
            company=company, started_at__gte=start, started_at__lt=end, transcript__isnull=False
        )
        .annotate(failed_from=Subquery(failed_from))
        .filter(
            Q(stage__in=REANALYZABLE) | Q(stage=Stage.FAILED, failed_from__in=FAILED_IN_ANALYSIS)
        )
    )
    current = CallAnalysis.objects.filter(call=OuterRef("pk"), is_current=True)
    if other_prompt_than:
        calls = calls.exclude(Exists(current.filter(prompt_version=other_prompt_than)))
    if analysed_before is not None:
        calls = calls.exclude(Exists(current.filter(created_at__gte=analysed_before)))
    return calls.order_by("started_at", "pk")


def monthly_budget(company: Company) -> Decimal | None:
    """The company's monthly LLM budget in USD: its own, else the deployment's; None: no
    limit."""
    if company.analysis_monthly_budget_usd is not None:
        return company.analysis_monthly_budget_usd
    return settings.ANALYSIS_MONTHLY_BUDGET_USD


def month_bounds(
    company: Company, now: datetime.datetime | None = None
) -> tuple[datetime.datetime, datetime.datetime]:
    """The calendar month ``now`` is in, in the company's time zone: [start, end)."""
    local = (now or timezone.now()).astimezone(ZoneInfo(company.timezone))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + datetime.timedelta(days=32)).replace(day=1)
    return start, end


def month_spend(company: Company, now: datetime.datetime | None = None) -> Decimal:
    """What the company's analyses cost this calendar month (its time zone), the failed
    attempts' included."""
    start, end = month_bounds(company, now)
    total = Decimal(0)
    for model in (CallAnalysis, AnalysisFailure):
        rows = model.objects.filter(company=company, created_at__gte=start, created_at__lt=end)
        total += rows.aggregate(spent=Sum("cost_usd", default=Decimal(0)))["spent"]
    return total
