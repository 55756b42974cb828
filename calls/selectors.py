"""Reads for calls. The company comes first; every lookup by id includes it."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

from django.db.models import Q, QuerySet

from calls.models import Call
from otto.models import Company, Contact, Role, User

# What a sales rep may see of the calls, as conditions over Call that apps above calls
# register in their ``ready()`` (appointments: the calls of the rep's leads and
# appointments). calls never imports them; with none registered a rep sees no call.
RepScope = Callable[[User], Q]
_rep_scopes: dict[str, RepScope] = {}


def register_rep_scope(name: str, scope: RepScope) -> None:
    _rep_scopes[name] = scope


def rep_condition(user: User) -> Q:
    """The calls a sales rep may see, as one condition over Call: any registered rep scope
    grants them; with none registered, none."""
    if not _rep_scopes:
        return Q(pk__in=[])
    return functools.reduce(operator.or_, (s(user) for s in _rep_scopes.values()))


def visible_calls(queryset: QuerySet[Call], *, user: User, role: str) -> QuerySet[Call]:
    """Narrow a tenant's calls to what ``role`` may see.

    Managers and CSRs see every call of their company. A sales rep sees the calls any
    registered rep scope grants them (any of them), and none when no app registered one.
    """
    if role in (Role.MANAGER, Role.CSR):
        return queryset
    if role == Role.SALES_REP and _rep_scopes:
        return queryset.filter(rep_condition(user))
    return queryset.none()


def call_list(company: Company, *, user: User, role: str) -> QuerySet[Call]:
    """The calls ``user`` may see, with what a list row shows joined in (one query a page)."""
    calls = Call.objects.filter(company=company).select_related("contact", "handled_by")
    return visible_calls(calls, user=user, role=role)


def contact_calls(company: Company, contact: Contact, *, user: User, role: str) -> QuerySet[Call]:
    return call_list(company, user=user, role=role).filter(contact=contact)
