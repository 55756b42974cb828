from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from messaging.models import FollowUp, MissedCallRecovery, Thread
from otto.filters import UTCDateTimeFilter
from otto.services import check_phone


class ThreadFilter(django_filters.FilterSet):
    contact = django_filters.NumberFilter(field_name="contact_id")
    phone = django_filters.CharFilter(method="filter_phone", help_text="Any common format.")
    unread = django_filters.BooleanFilter(method="filter_unread", help_text="Has unread messages.")

    class Meta:
        model = Thread
        fields = ["contact", "phone", "unread"]

    def filter_phone(self, queryset: QuerySet[Thread], name: str, value: str) -> QuerySet[Thread]:
        from django.core.exceptions import ValidationError

        try:
            return queryset.filter(phone=check_phone(value))
        except ValidationError:
            return queryset.none()

    def filter_unread(self, queryset: QuerySet[Thread], name: str, value: bool) -> QuerySet[Thread]:
        return queryset.filter(unread__gt=0) if value else queryset.filter(unread=0)


class RecoveryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=MissedCallRecovery.Status.choices)
    date_from = UTCDateTimeFilter(
        field_name="started_at", lookup_expr="gte", help_text="Missed at or after (ISO 8601)."
    )
    date_to = UTCDateTimeFilter(
        field_name="started_at", lookup_expr="lt", help_text="Missed before (ISO 8601)."
    )

    class Meta:
        model = MissedCallRecovery
        fields = ["status", "date_from", "date_to"]


class FollowUpFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=FollowUp.Status.choices)
    channel = django_filters.ChoiceFilter(choices=FollowUp.Channel.choices)
    call = django_filters.NumberFilter(field_name="call_id")
    contact = django_filters.NumberFilter(field_name="contact_id")
    date_from = UTCDateTimeFilter(
        field_name="scheduled_for", lookup_expr="gte", help_text="Due at or after (ISO 8601)."
    )
    date_to = UTCDateTimeFilter(
        field_name="scheduled_for", lookup_expr="lt", help_text="Due before (ISO 8601)."
    )

    class Meta:
        model = FollowUp
        fields = ["status", "channel", "call", "contact", "date_from", "date_to"]
