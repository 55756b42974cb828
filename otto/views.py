"""The tenant core's endpoints: ``me/``, ``company/``, ``contacts/``, ``audit/``."""

from __future__ import annotations

from typing import Any, cast

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.utils.urls import replace_query_param

from otto import selectors, services, timeline
from otto.auth import TenantRequest
from otto.filters import AuditEventFilter, ContactFilter
from otto.models import AuditEvent, Company, Contact
from otto.pagination import AuditCursorPagination
from otto.permissions import ALL_ROLES, MANAGERS, OFFICE
from otto.serializers import (
    AuditEventSerializer,
    CompanySerializer,
    ContactSerializer,
    MeSerializer,
    TimelinePageSerializer,
    TimelineQuerySerializer,
)
from otto.viewsets import Conflict, TenantAPIView, TenantViewSet


class MeView(TenantAPIView):
    roles = {"default": ALL_ROLES}

    @extend_schema(responses=MeSerializer)
    def get(self, request: TenantRequest) -> Response:
        user, company = request.user, request.company
        data = {
            "user": {"id": user.pk, "email": user.email, "name": user.name},
            "company": {"id": company.pk, "name": company.name},
            "role": request.role,
        }
        return Response(MeSerializer(data).data)


class CompanyView(TenantAPIView):
    """The caller's company settings. Everyone reads them; managers change them."""

    roles = {"default": ALL_ROLES, "patch": MANAGERS}
    serializer_class = CompanySerializer

    def _output(self, company: Company) -> Response:
        context = {
            "tracking_numbers": selectors.tracking_numbers(company),
            "callrail_company_ids": selectors.callrail_company_ids(company),
        }
        return Response(CompanySerializer(company, context=context).data)

    @extend_schema(responses=CompanySerializer)
    def get(self, request: TenantRequest) -> Response:
        return self._output(request.company)

    @extend_schema(
        request=CompanySerializer,
        responses={
            200: CompanySerializer,
            409: OpenApiResponse(
                description="A number or CallRail company id belongs to another Otto account."
            ),
            422: OpenApiResponse(
                description="The tenant's own CallRail key does not vouch for a claimed id."
            ),
            503: OpenApiResponse(description="CallRail could not be asked; nothing changed."),
        },
    )
    def patch(self, request: TenantRequest) -> Response:
        serializer = CompanySerializer(request.company, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            company = services.update_company(
                request.company, actor=request.user, **serializer.validated_data
            )
        except services.NumbersTaken as exc:
            raise Conflict(
                "These numbers belong to another Otto account.", {"numbers": exc.numbers}
            ) from None
        except (
            services.CallRailCompanyTaken,
            services.CallRailClaimRefused,
            services.CallRailUnavailable,
        ) as exc:
            raise callrail_claim_error(exc) from None
        return self._output(company)


class CallRailClaimError(exceptions.APIException):
    """A refused CallRail company claim, in the error shape with its own code."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: dict[str, Any],
        wait: float | None = None,
    ) -> None:
        self.status_code = status_code
        super().__init__(message, code)
        self.details = details
        # DRF's handler turns ``wait`` into Retry-After.
        self.wait = wait


def callrail_claim_error(exc: Exception) -> CallRailClaimError:
    """409 for an id another tenant holds (said without naming the tenant), 422 for one the
    tenant's own key does not vouch for, 503 when CallRail could not be asked."""
    if isinstance(exc, services.CallRailCompanyTaken):
        return CallRailClaimError(
            status.HTTP_409_CONFLICT,
            "callrail_company_taken",
            "These CallRail company ids belong to another Otto account.",
            {"callrail_company_ids": exc.callrail_ids},
        )
    if isinstance(exc, services.CallRailClaimRefused):
        return CallRailClaimError(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            exc.code,
            exc.message,
            {"callrail_company_ids": exc.callrail_ids},
        )
    assert isinstance(exc, services.CallRailUnavailable)  # noqa: S101 - the three above
    return CallRailClaimError(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "callrail_unavailable",
        "CallRail could not be reached to check the company ids; nothing was changed. "
        "Try again shortly.",
        {},
        wait=max(exc.retry_after or 30.0, 1.0),
    )


DUPLICATE_CONTACT = OpenApiResponse(
    description="A contact with this phone number exists (`details.id` is that contact)."
)


@extend_schema_view(
    create=extend_schema(responses={201: ContactSerializer, 409: DUPLICATE_CONTACT}),
    partial_update=extend_schema(responses={200: ContactSerializer, 409: DUPLICATE_CONTACT}),
)
class ContactViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    TenantViewSet[Contact],
):
    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    ordering_fields = ["created_at", "name"]
    http_method_names = ["get", "post", "patch", "head", "options"]
    roles = {"default": OFFICE}

    # ``cast``: as in TenantViewSet, authentication bound the company on the request.

    def perform_create(self, serializer: BaseSerializer[Contact]) -> None:
        try:
            serializer.instance = services.create_contact(
                cast(TenantRequest, self.request).company, **serializer.validated_data
            )
        except services.DuplicateContact as exc:
            raise _duplicate(exc) from None

    def perform_update(self, serializer: BaseSerializer[Contact]) -> None:
        # An update's serializer is built around the object get_object() found.
        contact = cast(Contact, serializer.instance)
        try:
            serializer.instance = services.update_contact(
                cast(TenantRequest, self.request).company, contact, **serializer.validated_data
            )
        except services.DuplicateContact as exc:
            raise _duplicate(exc) from None

    @extend_schema(parameters=[TimelineQuerySerializer], responses=TimelinePageSerializer)
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def timeline(self, request: TenantRequest, pk: Any = None) -> Response:
        """The contact's history, newest first: typed items (calls, texts, consent)."""
        contact = self.get_object()
        query = TimelineQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        items, following = timeline.timeline_page(
            request.company,
            contact,
            user=request.user,
            role=request.role,
            after=query.validated_data.get("cursor"),
            size=query.validated_data["page_size"],
        )
        next_url = None
        if following is not None:
            next_url = replace_query_param(
                request.build_absolute_uri(), "cursor", following.encode()
            )
        page = {"next": next_url, "results": [item.data() for item in items]}
        return Response(TimelinePageSerializer(page).data)


class AuditEventViewSet(mixins.ListModelMixin, TenantViewSet[AuditEvent]):
    """The tenant's audit log, newest first (managers): recording plays, exports and
    erasures, role and settings changes, ops retries and replays (docs/governance.md)."""

    queryset = AuditEvent.objects.select_related("actor")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    pagination_class = AuditCursorPagination
    # The order is fixed (the cursor depends on it).
    filter_backends = [DjangoFilterBackend]
    roles = {"default": MANAGERS}


def _duplicate(exc: services.DuplicateContact) -> Conflict:
    return Conflict("A contact with this phone number exists.", {"id": exc.existing.pk})
