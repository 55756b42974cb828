"""The base API views: tenancy, roles, throttles and idempotency are decided once, here.

A concrete viewset declares its queryset, serializers and ``roles``; it never filters by
company itself. ``get_queryset`` keeps only the caller's company's rows, so another
tenant's id is simply not found: 404, never 403, and the response does not reveal that
the object exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from django.db.models import Model, QuerySet
from rest_framework import exceptions, status, viewsets
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from otto.idempotency import IdempotencyMixin
from otto.models import Role
from otto.permissions import HasRole, IsTenantMember

if TYPE_CHECKING:
    from otto.auth import TenantRequest


class Conflict(exceptions.APIException):
    """409 whose ``details`` point at what conflicts (e.g. the existing contact's id)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "This conflicts with something that already exists."
    default_code = "conflict"

    def __init__(self, detail: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.details = details or {}


class TenantViewMixin(IdempotencyMixin):
    permission_classes: Sequence[type[BasePermission]] = [IsTenantMember, HasRole]
    roles: dict[str, frozenset[Role]] = {}

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        details = getattr(exc, "details", None)
        # otto.errors shapes every error but only knows DRF's own exceptions' details.
        if details and isinstance(response.data, dict) and "error" in response.data:
            response.data["error"]["details"] = details
        return response


class TenantAPIView(TenantViewMixin, APIView):
    """A tenant endpoint that is not a collection (``me/``, ``company/``)."""


class TenantViewSet[M: Model](TenantViewMixin, viewsets.GenericViewSet[M]):
    """A collection owned by the company. Declare ``queryset`` and ``roles``."""

    # ``cast``: authentication bound the company on the request (otto.auth.bind_tenant), and
    # IsTenantMember refused the request before these run if there was none.

    def get_queryset(self) -> QuerySet[M]:
        return super().get_queryset().filter(company=cast("TenantRequest", self.request).company)

    def perform_create(self, serializer: BaseSerializer[M]) -> None:
        serializer.save(company=cast("TenantRequest", self.request).company)

    @classmethod
    def tenant_model(cls) -> type[M]:
        """The model behind the collection (the isolation tests create one per route)."""
        # Every concrete viewset declares ``queryset`` (DRF asserts it in get_queryset).
        return cast("QuerySet[M]", cls.queryset).model
