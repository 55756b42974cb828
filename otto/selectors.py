"""Reads for the tenant core. The company comes first; every lookup by id includes it."""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.db.models import Q, QuerySet

from integrations.callrail.client import CallRailClient
from otto.crypto import Secret
from otto.models import CallRailCompany, Company, Contact, Membership, PhoneNumber, User


def company_for_org(clerk_org_id: str) -> Company | None:
    return Company.objects.filter(clerk_org_id=clerk_org_id).first()


def membership_of(company: Company, user: User) -> Membership | None:
    return (
        Membership.objects.select_related("user", "company")
        .filter(company=company, user=user)
        .first()
    )


def active_member(company: Company, user_id: int, *, role: str | None = None) -> User | None:
    """The user behind an active membership of ``company`` (with ``role``, if given); None
    for anyone else, another tenant's users included."""
    memberships = Membership.objects.filter(
        company=company, user_id=user_id, revoked_at__isnull=True
    ).select_related("user")
    if role is not None:
        memberships = memberships.filter(role=role)
    membership = memberships.first()
    return membership.user if membership is not None else None


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


def callrail_company_ids(company: Company) -> list[str]:
    """Every CallRail company id the tenant holds (``COM…`` and legacy numeric)."""
    return list(
        CallRailCompany.objects.filter(company=company)
        .order_by("callrail_company_id")
        .values_list("callrail_company_id", flat=True)
    )


def callrail_ids_held_elsewhere(company: Company, callrail_ids: list[str]) -> list[str]:
    """Which of ``callrail_ids`` another tenant already holds."""
    return sorted(
        CallRailCompany.objects.filter(callrail_company_id__in=callrail_ids)
        .exclude(company=company)
        .values_list("callrail_company_id", flat=True)
    )


def uses_deployment_callrail_key(company: Company) -> bool:
    """Whether this tenant is the one ``CALLRAIL_SINGLE_TENANT`` names: the only tenant the
    deployment-wide ``CALLRAIL_API_KEY`` may ever read for."""
    single = settings.CALLRAIL_SINGLE_TENANT
    return bool(single) and company.slug == single


def callrail_credentials(company: Company) -> tuple[str | None, str | None]:
    """The tenant's own CallRail API key and account id.

    Never the deployment's key for a tenant with none of its own: with it, whatever
    account and company ids a manager typed in would be read for them. Only the single
    tenant of a single-tenant deployment falls back to it.
    """
    secret = company.callrail_api_key
    # A Secret once loaded from the database; a plain str on an instance just assigned.
    key = secret.reveal() if isinstance(secret, Secret) else secret
    account = company.callrail_account_id or None
    if not key and uses_deployment_callrail_key(company):
        return settings.CALLRAIL_API_KEY, account or settings.CALLRAIL_ACCOUNT_ID
    return key or None, account


def has_callrail_key(company: Company) -> bool:
    return callrail_credentials(company)[0] is not None


def callrail_client(company: Company) -> CallRailClient:
    """The tenant's CallRail client; a permanent ProviderError when it has no key."""
    api_key, account_id = callrail_credentials(company)
    return CallRailClient.with_credentials(api_key=api_key, account_id=account_id)


def callrail_tenant(callrail_ids: list[str]) -> tuple[Company | None, str]:
    """The active tenant holding the first of ``callrail_ids`` that any tenant holds, and
    which id found it. An inactive tenant is nobody: its deliveries are unmatched."""
    wanted = [str(value) for value in callrail_ids if value not in (None, "")]
    if not wanted:
        return None, ""
    held = {
        row.callrail_company_id: row.company
        for row in CallRailCompany.objects.select_related("company").filter(
            callrail_company_id__in=wanted, company__is_active=True
        )
    }
    for value in wanted:
        if value in held:
            return held[value], value
    return None, ""


def tracking_number_tenant(number: str | None) -> Company | None:
    """The active tenant tracking calls on ``number`` (any common format)."""
    if not number:
        return None
    # Formatting only, no validity check: the stored number was validated when it was
    # configured, and CallRail may send it in national format.
    try:
        parsed = phonenumbers.parse(str(number), settings.DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    found = (
        PhoneNumber.objects.select_related("company")
        .filter(number=e164, kind=PhoneNumber.Kind.TRACKING, company__is_active=True)
        .first()
    )
    return found.company if found else None


def numbers_held_elsewhere(company: Company, numbers: list[str]) -> list[str]:
    """Which of ``numbers`` another tenant already holds (numbers are unique across tenants)."""
    return sorted(
        PhoneNumber.objects.filter(number__in=numbers)
        .exclude(company=company)
        .values_list("number", flat=True)
    )


def member_with_email(company: Company, email: str | None) -> User | None:
    """The user with ``email`` (any case) holding an active membership of ``company``;
    never a user of another tenant, nor one whose membership was revoked."""
    email = (email or "").strip()
    if not email:
        return None
    return (
        User.objects.filter(
            email__iexact=email,
            memberships__company=company,
            memberships__revoked_at__isnull=True,
        )
        .order_by("pk")
        .first()
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
