import django_filters
from django.db.models import QuerySet

from otto import selectors
from otto.models import Contact


class ContactFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        method="filter_search", help_text="Part of the name, or digits of the phone number."
    )
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    email = django_filters.CharFilter(lookup_expr="iexact")
    city = django_filters.CharFilter(lookup_expr="iexact")
    state = django_filters.CharFilter(lookup_expr="iexact")
    postal_code = django_filters.CharFilter()

    class Meta:
        model = Contact
        fields = ["search", "created_after", "created_before", "email", "city", "state"]

    def filter_search(self, queryset: QuerySet[Contact], name: str, value: str):
        return selectors.search_contacts(queryset, value)
