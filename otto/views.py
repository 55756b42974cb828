"""The tenant core's endpoints: ``me/``, ``company/``, ``contacts/``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.request import Request
from rest_framework.response import Response

from otto import selectors, services
from otto.filters import ContactFilter
from otto.models import Contact
from otto.permissions import ALL_ROLES, MANAGERS, OFFICE
from otto.serializers import CompanySerializer, ContactSerializer, MeSerializer
from otto.viewsets import Conflict, TenantAPIView, TenantViewSet


class MeView(TenantAPIView):
    roles = {"default": ALL_ROLES}

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
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

    def _output(self, company) -> Response:
        context = {"tracking_numbers": selectors.tracking_numbers(company)}
        return Response(CompanySerializer(company, context=context).data)

    @extend_schema(responses=CompanySerializer)
    def get(self, request: Request) -> Response:
        return self._output(request.company)

    @extend_schema(request=CompanySerializer, responses=CompanySerializer)
    def patch(self, request: Request) -> Response:
        serializer = CompanySerializer(request.company, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            company = services.update_company(request.company, **serializer.validated_data)
        except services.NumbersTaken as exc:
            raise Conflict(
                "These numbers belong to another Otto account.", {"numbers": exc.numbers}
            ) from None
        return self._output(company)


class ContactViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    TenantViewSet,
):
    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    ordering_fields = ["created_at", "name"]
    http_method_names = ["get", "post", "patch", "head", "options"]
    roles = {"default": OFFICE}

    def perform_create(self, serializer: ContactSerializer) -> None:
        try:
            serializer.instance = services.create_contact(
                self.request.company, **serializer.validated_data
            )
        except services.DuplicateContact as exc:
            raise _duplicate(exc) from None

    def perform_update(self, serializer: ContactSerializer) -> None:
        try:
            serializer.instance = services.update_contact(
                self.request.company, serializer.instance, **serializer.validated_data
            )
        except services.DuplicateContact as exc:
            raise _duplicate(exc) from None


def _duplicate(exc: services.DuplicateContact) -> Conflict:
    return Conflict("A contact with this phone number exists.", {"id": exc.existing.pk})
