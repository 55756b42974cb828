"""The analysis API on a call: ``calls/{id}/analyses/`` (every version) and
``calls/{id}/analysis/`` (the current one; PATCH stores people's corrections)."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from analysis import selectors, services
from analysis.serializers import CallAnalysisSerializer, OverridesSerializer
from calls import selectors as call_selectors
from calls.models import Call
from otto.auth import TenantRequest
from otto.permissions import ALL_ROLES, OFFICE
from otto.viewsets import TenantViewSet


class CallAnalysisViewSet(TenantViewSet):
    """Analyses of the calls the caller may see; another tenant's call is a 404."""

    queryset = Call.objects.all()
    serializer_class = CallAnalysisSerializer
    pagination_class = None
    roles = {"default": ALL_ROLES, "analysis": ALL_ROLES, "partial_update_analysis": OFFICE}

    def get_queryset(self) -> QuerySet[Call]:
        request = cast(TenantRequest, self.request)
        return call_selectors.visible_calls(
            super().get_queryset(), user=request.user, role=request.role
        )

    @extend_schema(responses={200: CallAnalysisSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def analyses(self, request: Request, pk: Any = None) -> Response:
        """Every analysis version of the call, newest first."""
        call = self.get_object()
        company = cast(TenantRequest, request).company
        rows = selectors.call_analyses(company, call)
        return Response(CallAnalysisSerializer(rows, many=True).data)

    @extend_schema(responses={200: CallAnalysisSerializer, 404: OpenApiResponse()})
    @action(detail=True, methods=["get"])
    def analysis(self, request: Request, pk: Any = None) -> Response:
        """The current analysis, overrides applied; 404 until there is one."""
        return Response(CallAnalysisSerializer(self._current()).data)

    @extend_schema(request=OverridesSerializer, responses={200: CallAnalysisSerializer})
    @analysis.mapping.patch
    def partial_update_analysis(self, request: Request, pk: Any = None) -> Response:
        """Correct fields of the current analysis (manager or CSR). A correction is kept
        through every later re-analysis and wins wherever the field is read."""
        current = self._current()
        body = OverridesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        tenant = cast(TenantRequest, request)
        row = services.update_overrides(tenant.company, current, body.overrides(), user=tenant.user)
        return Response(CallAnalysisSerializer(row).data)

    def _current(self) -> Any:
        call = self.get_object()
        current = selectors.current_analysis(cast(TenantRequest, self.request).company, call)
        if current is None:
            raise NotFound("This call has no analysis yet.")
        return current
