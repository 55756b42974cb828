"""Reads for calls. The company comes first; every lookup by id includes it."""

from __future__ import annotations

from django.db.models import QuerySet

from calls.models import Call
from otto.models import Company, Contact, Role, User


def visible_calls(queryset: QuerySet[Call], *, user: User, role: str) -> QuerySet[Call]:
    """Narrow a tenant's calls to what ``role`` may see.

    Managers and CSRs see every call of their company. A sales rep sees the calls linked to
    the leads assigned to them; leads do not exist yet (the appointments issue adds them and
    ``Call.lead``), so until then a rep sees none. Replace this branch with
    ``queryset.filter(lead__assigned_to=user)`` when they do.
    """
    if role in (Role.MANAGER, Role.CSR):
        return queryset
    return queryset.none()


def call_list(company: Company, *, user: User, role: str) -> QuerySet[Call]:
    """The calls ``user`` may see, with what a list row shows joined in (one query a page)."""
    calls = Call.objects.filter(company=company).select_related("contact", "handled_by")
    return visible_calls(calls, user=user, role=role)


def contact_calls(company: Company, contact: Contact, *, user: User, role: str) -> QuerySet[Call]:
    return call_list(company, user=user, role=role).filter(contact=contact)
