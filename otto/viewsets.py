"""The base API views: tenancy, roles, throttles and idempotency are decided once, here.

A concrete viewset declares its queryset, serializers and ``roles``; it never filters by
company itself. ``get_queryset`` keeps only the caller's company's rows, so another
tenant's id is simply not found: 404, never 403, and the response does not reveal that
the object exists.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import exceptions, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from otto.idempotency import IdempotencyMixin
from otto.permissions import HasRole, IsTenantMember


class Conflict(exceptions.APIException):
    """409 whose ``details`` point at what conflicts (e.g. the existing contact's id)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "This conflicts with something that already exists."
    default_code = "conflict"

    def __init__(self, detail: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.details = details or {}


class TenantViewMixin(IdempotencyMixin):
    permission_classes = [IsTenantMember, HasRole]
    roles: dict[str, frozenset] = {}

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        details = getattr(exc, "details", None)
        # otto.errors shapes every error but only knows DRF's own exceptions' details.
        if details and isinstance(response.data, dict) and "error" in response.data:
            response.data["error"]["details"] = details
        return response


class TenantAPIView(TenantViewMixin, APIView):
    """A tenant endpoint that is not a collection (``me/``, ``company/``)."""


class TenantViewSet(TenantViewMixin, viewsets.GenericViewSet):
    """A collection owned by the company. Declare ``queryset`` and ``roles``."""

    def get_queryset(self) -> QuerySet[Any]:
        return super().get_queryset().filter(company=self.request.company)

    def perform_create(self, serializer: Any) -> None:
        serializer.save(company=self.request.company)

    @classmethod
    def tenant_model(cls) -> type[Model]:
        """The model behind the collection (the isolation tests create one per route)."""
        return cls.queryset.model
