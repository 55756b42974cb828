from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from otto import selectors
from otto.models import AuditAction, AuditEvent, Contact


class UTCIsoDateTimeField(IsoDateTimeField):  # type: ignore[misc]  # django-filter is untyped
    """ISO 8601 in, UTC out. Python accepts offsets up to ±23:59 and PostgreSQL refuses
    anything beyond ±15:59, so a value like ``…+20:20`` would be a database error (500)."""

    def to_python(self, value: Any) -> datetime | None:
        parsed: datetime | None = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("This date-time is out of range.", code="invalid") from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):  # type: ignore[misc]  # as above
    """The date-time filter for every list: see :class:`UTCIsoDateTimeField`."""

    field_class = UTCIsoDateTimeField


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):  # type: ignore[misc]  # django-filter is untyped
    """A row's id: an integer, not NumberFilter's decimal (``?contact=1.5`` is a 400)."""

    field_class = forms.IntegerField


class ContactFilter(django_filters.FilterSet):  # type: ignore[misc]  # django-filter is untyped
    search = django_filters.CharFilter(
        method="filter_search", help_text="Part of the name, or digits of the phone number."
    )
    created_after = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")
    email = django_filters.CharFilter(lookup_expr="iexact")
    city = django_filters.CharFilter(lookup_expr="iexact")
    state = django_filters.CharFilter(lookup_expr="iexact")
    postal_code = django_filters.CharFilter()

    class Meta:
        model = Contact
        fields = ["search", "created_after", "created_before", "email", "city", "state"]

    def filter_search(
        self, queryset: QuerySet[Contact], name: str, value: str
    ) -> QuerySet[Contact]:
        return selectors.search_contacts(queryset, value)


class ColumnChoicesFilter(django_filters.MultipleChoiceFilter):  # type: ignore[misc]  # untyped
    """Any of several values of the row's own column (``?status=open&status=done``).

    Never ``SELECT DISTINCT``, django-filter's default for this filter: a column of the row
    itself cannot duplicate rows, and DISTINCT made PostgreSQL sort every matching row of
    the tenant before the page's LIMIT (800 ms for ``calls/?stage=done`` over 150,000 of
    them; docs/performance.md).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)


class AuditEventFilter(django_filters.FilterSet):  # type: ignore[misc]  # django-filter is untyped
    action = ColumnChoicesFilter(
        choices=AuditAction.choices, help_text="One or more actions (repeat the parameter)."
    )
    actor = IdFilter(field_name="actor", help_text="The acting user's id.")
    created_after = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")
    target_type = django_filters.CharFilter(help_text="e.g. call, membership, company, phone.")
    target_id = django_filters.CharFilter()

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "created_after", "created_before", "target_type", "target_id"]
