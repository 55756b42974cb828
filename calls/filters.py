from typing import Any, NoReturn

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import NotSupportedError
from django.db.models import F, Lookup, QuerySet, Value
from rest_framework.exceptions import ValidationError

from calls import search
from calls.models import Call
from otto.filters import ColumnChoicesFilter, IdFilter, UTCDateTimeFilter
from otto.services import check_phone


class JSONArrayHas(Lookup):
    """A JSON array column holds ``value`` as one of its items.

    Django's ``contains`` on a JSONField is PostgreSQL's ``@>`` and raises on SQLite (the
    embedded default). ``@>`` stays on PostgreSQL, where a GIN index can serve it; SQLite
    walks the array with JSON1's ``json_each``.
    """

    lookup_name = "array_has"
    prepare_rhs = False

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} @> jsonb_build_array(({rhs})::text)", [*lhs_params, *rhs_params]

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, list]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        # lhs and rhs are compiled SQL with placeholders; the value travels as a parameter.
        sql = f"EXISTS (SELECT 1 FROM json_each({lhs}) AS item WHERE item.value = {rhs})"  # noqa: S608
        return sql, [*lhs_params, *rhs_params]

    def as_sql(self, compiler: Any, connection: Any) -> NoReturn:
        raise NotSupportedError(f"array_has is not implemented for {connection.vendor}.")


class CallFilter(django_filters.FilterSet):
    """Every filter maps onto the list indexes: (company, -started_at), (company, stage),
    (company, answered, -started_at)."""

    started_after = UTCDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UTCDateTimeFilter(field_name="started_at", lookup_expr="lt")
    answered = django_filters.BooleanFilter(help_text="false lists the missed calls.")
    direction = django_filters.ChoiceFilter(choices=Call.Direction.choices)
    stage = ColumnChoicesFilter(
        choices=Call.Stage.choices, help_text="Repeat to match any of several stages."
    )
    # Ids, not model choices: another tenant's id matches nothing instead of revealing that
    # it exists through a validation error.
    contact = IdFilter(field_name="contact_id")
    handled_by = IdFilter(field_name="handled_by_id")
    tracking_number = django_filters.CharFilter(
        method="filter_tracking_number", help_text="Any common phone format."
    )
    tag = django_filters.CharFilter(method="filter_tag", help_text="Calls carrying this tag.")
    search = django_filters.CharFilter(
        method="filter_search",
        help_text="Words in the redacted transcript, the customer's name or the tags (web "
        'search syntax: "a phrase", -excluded). Results come best match first.',
    )

    class Meta:
        model = Call
        fields = [
            "started_after",
            "started_before",
            "answered",
            "direction",
            "stage",
            "contact",
            "handled_by",
            "tracking_number",
            "tag",
            "search",
        ]

    def filter_tracking_number(self, queryset: QuerySet[Call], name: str, value: str):
        try:
            number = check_phone(value)
        except DjangoValidationError as exc:
            raise ValidationError({"tracking_number": exc.messages}) from None
        return queryset.filter(tracking_number=number)

    def filter_tag(self, queryset: QuerySet[Call], name: str, value: str):
        return queryset.filter(JSONArrayHas(F("tags"), Value(value)))

    def filter_search(self, queryset: QuerySet[Call], name: str, value: str):
        return search.search(queryset, value) if value.strip() else queryset


def register_filter(name: str, filter: django_filters.Filter) -> None:
    """Add a filter to ``calls/`` from an app above calls, which never imports it
    (analysis: ``?objection=``, ``?booking_status=``, ``?qualified=``, ``?booked=``)."""
    CallFilter.base_filters[name] = filter
