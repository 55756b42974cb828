"""Reads for the inbox: which tenant a webhook belongs to."""

from __future__ import annotations

import phonenumbers
from django.conf import settings
from django.db import connections, router

from otto.models import Company, PhoneNumber


def companies_with_callrail_id(callrail_ids: list[str]) -> list[Company]:
    """Tenants configured with any of ``callrail_ids`` (numeric or ``COM…``; the list may
    hold them as strings or numbers)."""
    wanted = {str(value) for value in callrail_ids if value}
    if not wanted:
        return []
    queryset = Company.objects.exclude(callrail_company_ids=[])
    connection = connections[router.db_for_read(Company)]
    if connection.features.supports_json_field_contains:
        from django.db.models import Q

        match = Q()
        for value in wanted:
            match |= Q(callrail_company_ids__contains=[value])
            if value.isdigit():
                match |= Q(callrail_company_ids__contains=[int(value)])
        queryset = queryset.filter(match)
    # SQLite (the embedded default) cannot query inside JSON lists; filtered here instead.
    return [
        company
        for company in queryset
        if wanted & {str(value) for value in company.callrail_company_ids or []}
    ]


def company_with_tracking_number(number: str | None) -> Company | None:
    if not number:
        return None
    # Formatting only, no validity check: the stored number was validated when it was
    # configured, and CallRail may send it in national format.
    try:
        parsed = phonenumbers.parse(number, settings.DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    found = (
        PhoneNumber.objects.select_related("company")
        .filter(number=e164, kind=PhoneNumber.Kind.TRACKING)
        .first()
    )
    return found.company if found else None
