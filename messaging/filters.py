from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from messaging.models import Thread
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
