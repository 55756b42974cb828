"""The analysis API on a call: ``calls/{id}/analyses/`` (every version) and
``calls/{id}/analysis/`` (the current one; PATCH stores people's corrections)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from analysis import kpis, selectors, services
from analysis.serializers import (
    CallAnalysisSerializer,
    KpiParamsSerializer,
    ObjectionResultsSerializer,
    OverridesSerializer,
    OverviewResultSerializer,
    RecoveryResultSerializer,
    RepResultsSerializer,
    TrendResultsSerializer,
)
from calls import selectors as call_selectors
from calls.models import Call
from otto.auth import TenantRequest
from otto.permissions import ALL_ROLES, OFFICE
from otto.viewsets import TenantAPIView, TenantViewSet


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


# --- the KPIs: metrics/… -----------------------------------------------------------------------


class KpisNeedPostgres(APIException):
    status_code = 501
    default_detail = "KPIs are computed with PostgreSQL's JSON functions; this database is not."
    default_code = "kpis_need_postgresql"


KPI_PARAMETERS = [
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="First day (tenant's zone)."),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Last day, included."),
    OpenApiParameter("rep", int, description="Manager only: one sales rep's figures."),
    OpenApiParameter("csr", int, description="Manager only: one CSR's figures."),
]


class KpiView(TenantAPIView):
    """A KPI over ``date_from``…``date_to``: the tenant's for a manager (or one ``rep``'s or
    ``csr``'s), the caller's own for anyone else. A person outside that is a 403."""

    roles = {"default": ALL_ROLES}
    figures: Callable[[kpis.Scope], Any]
    output: type[serializers.Serializer]

    def get(self, request: Request) -> Response:
        if connection.vendor != "postgresql":
            raise KpisNeedPostgres()
        tenant = cast(TenantRequest, request)
        company = tenant.company
        today = timezone.localdate(timezone=ZoneInfo(company.timezone))
        params = KpiParamsSerializer(data=request.query_params, context={"today": today})
        params.is_valid(raise_exception=True)
        p = params.validated_data
        try:
            person, role = kpis.check_person(
                company, user=tenant.user, role=tenant.role, rep=p.get("rep"), csr=p.get("csr")
            )
        except kpis.NotYours:
            raise PermissionDenied("You may see only your own figures.") from None
        scope = kpis.Scope(company, p["date_from"], p["date_to"], person, role)
        with kpis.without_jit():
            data = self.figures(scope)
        body = data if isinstance(data, dict) else {"results": data}
        body = {**body, "date_from": scope.date_from, "date_to": scope.date_to}
        return Response(self.output(body).data)


@extend_schema(parameters=KPI_PARAMETERS, responses=OverviewResultSerializer)
class OverviewView(KpiView):
    figures = staticmethod(kpis.overview)
    output = OverviewResultSerializer


@extend_schema(parameters=KPI_PARAMETERS, responses=TrendResultsSerializer)
class BookingTrendView(KpiView):
    figures = staticmethod(kpis.booking_trend)
    output = TrendResultsSerializer


@extend_schema(parameters=KPI_PARAMETERS, responses=ObjectionResultsSerializer)
class TopObjectionsView(KpiView):
    figures = staticmethod(kpis.top_objections)
    output = ObjectionResultsSerializer


@extend_schema(parameters=KPI_PARAMETERS, responses=RepResultsSerializer)
class RepsView(KpiView):
    output = RepResultsSerializer

    @staticmethod
    def figures(scope: kpis.Scope) -> list[dict[str, Any]]:
        return kpis.reps(scope, kpis.people(scope.company, scope.person))


@extend_schema(parameters=KPI_PARAMETERS, responses=RecoveryResultSerializer)
class RecoveryView(KpiView):
    figures = staticmethod(kpis.recovery)
    output = RecoveryResultSerializer
