"""Tenant and role permissions, declared on each view.

A view lists who may do what::

    roles = {"default": ALL_ROLES, "partial_update": {Role.MANAGER}}

``"default"`` covers every action (or HTTP method, for plain API views) not listed.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from otto.models import Role

ALL_ROLES: frozenset[Role] = frozenset(Role)
MANAGERS: frozenset[Role] = frozenset({Role.MANAGER})
OFFICE: frozenset[Role] = frozenset({Role.MANAGER, Role.CSR})


class IsTenantMember(BasePermission):
    """An authenticated caller acting in an active company through a live membership."""

    message = "You have no access to an Otto organisation."

    def has_permission(self, request: Request, view: Any) -> bool:
        company = getattr(request, "company", None)
        return bool(
            request.user
            and request.user.is_authenticated
            and company is not None
            and company.is_active
            and getattr(request, "role", None) is not None
        )


class HasRole(BasePermission):
    """The caller's role is among those the view declares for this action."""

    message = "Your role may not do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        allowed = allowed_roles(view, request)
        return getattr(request, "role", None) in allowed


def allowed_roles(view: Any, request: Request) -> frozenset[Role]:
    roles: dict[str, frozenset[Role]] = getattr(view, "roles", None) or {}
    action = getattr(view, "action", None) or (request.method or "").lower()
    if action in roles:
        return frozenset(roles[action])
    if "default" not in roles:
        # A view that forgot to declare roles serves nobody rather than everybody.
        return frozenset()
    return frozenset(roles["default"])
