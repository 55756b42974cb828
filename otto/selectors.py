"""Reads for the tenant core. The company comes first; every lookup by id includes it."""

from __future__ import annotations

import re

from django.db.models import Q, QuerySet

from otto.models import Company, Contact, Membership, PhoneNumber, User


def company_for_org(clerk_org_id: str) -> Company | None:
    return Company.objects.filter(clerk_org_id=clerk_org_id).first()


def membership_of(company: Company, user: User) -> Membership | None:
    return (
        Membership.objects.select_related("user", "company")
        .filter(company=company, user=user)
        .first()
    )


def session_membership(user: User) -> Membership | None:
    """The one active membership a session user works through, or None.

    With several, there is no way to tell which tenant the browser means, so none.
    """
    memberships = list(
        Membership.objects.select_related("user", "company").filter(
            user=user, revoked_at__isnull=True, company__is_active=True
        )[:2]
    )
    return memberships[0] if len(memberships) == 1 else None


def tracking_numbers(company: Company) -> list[str]:
    return list(
        PhoneNumber.objects.filter(company=company, kind=PhoneNumber.Kind.TRACKING)
        .order_by("number")
        .values_list("number", flat=True)
    )


def numbers_held_elsewhere(company: Company, numbers: list[str]) -> list[str]:
    """Which of ``numbers`` another tenant already holds (numbers are unique across tenants)."""
    return sorted(
        PhoneNumber.objects.filter(number__in=numbers)
        .exclude(company=company)
        .values_list("number", flat=True)
    )


def contact_with_phone(company: Company, phone: str) -> Contact | None:
    return Contact.objects.filter(company=company, phone=phone).first()


def contact_list(company: Company) -> QuerySet[Contact]:
    return Contact.objects.filter(company=company)


def search_contacts(queryset: QuerySet[Contact], term: str) -> QuerySet[Contact]:
    """Name contains ``term``, or the phone contains its digits ("303-555" finds +1303555…)."""
    term = term.strip()
    if not term:
        return queryset
    condition = Q(name__icontains=term)
    digits = re.sub(r"\D", "", term)
    if len(digits) >= 3:
        condition |= Q(phone__contains=digits)
    return queryset.filter(condition)
