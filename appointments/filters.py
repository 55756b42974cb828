"""The list filters of leads, appointments, tasks and signals.

Date ranges are calendar dates in the company's time zone, both ends included: on an Acme
in New York, ``date_from=2026-03-10`` starts at 05:00 UTC that day. Ids are integers, and
another tenant's id matches nothing rather than revealing that it exists.
"""

from __future__ import annotations

import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from appointments.models import Appointment, KeySignal, Lead, Task
from otto import selectors as otto_selectors
from otto.auth import TenantRequest
from otto.filters import ColumnChoicesFilter, IdFilter
from otto.models import Contact

SEARCH_HELP = "Part of the contact's name, or digits of their phone number."


class LocalDateFilter(django_filters.DateFilter):
    """A calendar date in the company's time zone: the lower end starts at that day's
    midnight, the upper end (``end=True``) includes the whole day. ISO 8601 only:
    ``03/10/2026`` means different days to different people."""

    def __init__(self, *args: Any, end: bool = False, **kwargs: Any) -> None:
        self.end = end
        kwargs.setdefault("input_formats", ["%Y-%m-%d"])
        super().__init__(*args, **kwargs)

    def filter(self, queryset: QuerySet[Any], value: datetime.date | None) -> QuerySet[Any]:
        if value is None:
            return queryset
        request = cast(TenantRequest, self.parent.request)
        bound = _midnight(value, ZoneInfo(request.company.timezone), next_day=self.end)
        if bound is None:  # beyond the calendar: this end bounds nothing
            return queryset
        lookup = "lt" if self.end else "gte"
        return queryset.filter(**{f"{self.field_name}__{lookup}": bound})


def _midnight(day: datetime.date, zone: ZoneInfo, *, next_day: bool) -> datetime.datetime | None:
    try:
        if next_day:
            day += datetime.timedelta(days=1)
        return datetime.datetime.combine(day, datetime.time.min, tzinfo=zone).astimezone(
            datetime.UTC
        )
    except OverflowError:
        return None


def _search(queryset: QuerySet[Any], term: str, *text_fields: str, request: Any) -> QuerySet[Any]:
    """Rows whose contact matches ``term`` as ``contacts/?search=`` does, or one of whose
    ``text_fields`` contains it. The contacts searched are the company's: over every
    tenant's, a page took 60–200 ms on 670,000 contacts (docs/performance.md)."""
    term = term.strip()
    if not term:
        return queryset
    company = cast(TenantRequest, request).company
    contacts = otto_selectors.search_contacts(Contact.objects.filter(company=company), term)
    condition = Q(contact__in=contacts.values("pk"))
    for field in text_fields:
        condition |= Q(**{f"{field}__icontains": term})
    return queryset.filter(condition)


class LeadFilter(django_filters.FilterSet):
    status = ColumnChoicesFilter(
        choices=Lead.Status.choices, help_text="Repeat to match any of several statuses."
    )
    assigned_rep = IdFilter(field_name="assigned_rep_id")
    unassigned = django_filters.BooleanFilter(field_name="assigned_rep", lookup_expr="isnull")
    source = django_filters.CharFilter(lookup_expr="iexact")
    active = django_filters.BooleanFilter(field_name="is_active")
    contact = IdFilter(field_name="contact_id")
    date_from = LocalDateFilter(field_name="created_at", help_text="Created on or after.")
    date_to = LocalDateFilter(field_name="created_at", end=True, help_text="Created on or before.")
    search = django_filters.CharFilter(method="filter_search", help_text=SEARCH_HELP)

    class Meta:
        model = Lead
        fields = [
            "status",
            "assigned_rep",
            "unassigned",
            "source",
            "active",
            "contact",
            "date_from",
            "date_to",
            "search",
        ]

    def filter_search(self, queryset: QuerySet[Lead], name: str, value: str) -> QuerySet[Lead]:
        return _search(queryset, value, request=self.request)


class AppointmentFilter(django_filters.FilterSet):
    date_from = LocalDateFilter(field_name="scheduled_start", help_text="Starts on or after.")
    date_to = LocalDateFilter(
        field_name="scheduled_start", end=True, help_text="Starts on or before."
    )
    assigned_rep = IdFilter(field_name="assigned_rep_id")
    unassigned = django_filters.BooleanFilter(field_name="assigned_rep", lookup_expr="isnull")
    status = ColumnChoicesFilter(
        choices=Appointment.Status.choices, help_text="Repeat to match any of several."
    )
    outcome = ColumnChoicesFilter(choices=Appointment.Outcome.choices)
    lead = IdFilter(field_name="lead_id")
    contact = IdFilter(field_name="contact_id")
    search = django_filters.CharFilter(
        method="filter_search", help_text=f"{SEARCH_HELP} Or part of the address."
    )

    class Meta:
        model = Appointment
        fields = [
            "date_from",
            "date_to",
            "assigned_rep",
            "unassigned",
            "status",
            "outcome",
            "lead",
            "contact",
            "search",
        ]

    def filter_search(
        self, queryset: QuerySet[Appointment], name: str, value: str
    ) -> QuerySet[Appointment]:
        return _search(queryset, value, "address", request=self.request)


class TaskFilter(django_filters.FilterSet):
    status = ColumnChoicesFilter(choices=Task.Status.choices)
    type = ColumnChoicesFilter(choices=Task.Type.choices)
    source = ColumnChoicesFilter(choices=Task.Source.choices)
    assignee = IdFilter(field_name="assignee_id")
    overdue = django_filters.BooleanFilter(
        method="filter_overdue", help_text="Open and due before now (false: everything else)."
    )
    due_from = LocalDateFilter(field_name="due_at", help_text="Due on or after.")
    due_to = LocalDateFilter(field_name="due_at", end=True, help_text="Due on or before.")
    contact = IdFilter(field_name="contact_id")
    lead = IdFilter(field_name="lead_id")
    call = IdFilter(field_name="call_id")
    search = django_filters.CharFilter(
        method="filter_search", help_text=f"{SEARCH_HELP} Or words of the description."
    )

    class Meta:
        model = Task
        fields = [
            "status",
            "type",
            "source",
            "assignee",
            "overdue",
            "due_from",
            "due_to",
            "contact",
            "lead",
            "call",
            "search",
        ]

    def filter_overdue(self, queryset: QuerySet[Task], name: str, value: bool) -> QuerySet[Task]:
        overdue = Q(status=Task.Status.OPEN, due_at__lt=timezone.now())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)

    def filter_search(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        return _search(queryset, value, "description", request=self.request)


class KeySignalFilter(django_filters.FilterSet):
    type = ColumnChoicesFilter(choices=KeySignal.Type.choices)
    severity = ColumnChoicesFilter(choices=KeySignal.Severity.choices)
    acknowledged = django_filters.BooleanFilter(
        field_name="acknowledged_at", lookup_expr="isnull", exclude=True
    )
    call = IdFilter(field_name="call_id")
    contact = IdFilter(field_name="contact_id")
    search = django_filters.CharFilter(
        method="filter_search", help_text=f"{SEARCH_HELP} Or words of the detail."
    )

    class Meta:
        model = KeySignal
        fields = ["type", "severity", "acknowledged", "call", "contact", "search"]

    def filter_search(
        self, queryset: QuerySet[KeySignal], name: str, value: str
    ) -> QuerySet[KeySignal]:
        return _search(queryset, value, "detail", request=self.request)
