"""The calls list filters behind the KPIs (registered on ``calls/`` in analysis.apps), so
every figure can be drilled into: each uses the very condition its KPI counts."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from analysis import kpis
from analysis.models import CallAnalysis
from calls.models import Call


def _with_current(calls: QuerySet[Call], condition: str, value: bool) -> QuerySet[Call]:
    current = kpis.with_current(calls)
    match = kpis.analysis_conditions()[condition]
    return current.filter(match if value else ~match & Q(current__id__isnull=False))


def filter_objection(calls: QuerySet[Call], name: str, value: str) -> QuerySet[Call]:
    """Calls whose current analysis raised an objection of this category."""
    if not value:
        return calls
    return kpis.with_current(calls).filter(kpis.has_objection(value))


def filter_booking_status(calls: QuerySet[Call], name: str, value: str) -> QuerySet[Call]:
    if not value:
        return calls
    # A Q, as in kpis: django-stubs cannot see the FilteredRelation alias.
    return kpis.with_current(calls).filter(Q(current__effective_booking_status=value))


def filter_qualified(calls: QuerySet[Call], name: str, value: bool | None) -> QuerySet[Call]:
    return calls if value is None else _with_current(calls, "qualified", value)


def filter_booked(calls: QuerySet[Call], name: str, value: bool | None) -> QuerySet[Call]:
    return calls if value is None else _with_current(calls, "booked", value)


FILTERS = {
    "objection": django_filters.ChoiceFilter(
        choices=[(c, c) for c in kpis.CATEGORIES],
        method=filter_objection,
        help_text="Calls whose current analysis raised this objection (top-objections).",
    ),
    "booking_status": django_filters.ChoiceFilter(
        choices=CallAnalysis.BookingStatus.choices,
        method=filter_booking_status,
        help_text="The current analysis' booking status, a person's correction first.",
    ),
    "qualified": django_filters.BooleanFilter(
        method=filter_qualified,
        help_text="Qualified as the KPIs count it (qualified, or booked); false: analysed "
        "and not qualified.",
    ),
    "booked": django_filters.BooleanFilter(
        method=filter_booked,
        help_text="Booked as the KPIs count it (booked on the call, or an appointment made "
        "from it); false: analysed and not booked.",
    ),
}
