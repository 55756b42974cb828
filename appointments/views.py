"""The outcomes API: ``leads/``, ``appointments/``, ``tasks/``, ``signals/``.

Each viewset reads through :mod:`appointments.selectors` (what the caller's role may see:
another tenant's row, or a row outside the role, is a 404) and writes through
:mod:`appointments.services`. Who may write what is in ``roles`` and docs/outcomes.md.
"""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response

from appointments import selectors, services
from appointments.filters import AppointmentFilter, KeySignalFilter, LeadFilter, TaskFilter
from appointments.models import Appointment, KeySignal, Lead, Task
from appointments.serializers import (
    AppointmentSerializer,
    AppointmentUpdateSerializer,
    AssignSerializer,
    KeySignalSerializer,
    LeadHistorySerializer,
    LeadSerializer,
    LeadUpdateSerializer,
    TaskCreateSerializer,
    TaskSerializer,
    TaskUpdateSerializer,
)
from otto.auth import TenantRequest
from otto.pagination import CursorPagination
from otto.permissions import ALL_ROLES, OFFICE
from otto.viewsets import Conflict, TenantViewSet


class NewestFirst(CursorPagination):
    ordering = ("-created_at", "-id")  # type: ignore[assignment]  # DRF takes a tuple


class SoonestFirst(CursorPagination):
    ordering = ("scheduled_start", "id")  # type: ignore[assignment]  # as above


class DoubleBookingConflict(Conflict):
    default_code = "double_booking"


class ActiveLeadConflict(Conflict):
    default_code = "active_lead_exists"


class TaskCancelledConflict(Conflict):
    default_code = "task_cancelled"


DOUBLE_BOOKING = OpenApiResponse(
    description="`double_booking`: the rep has overlapping appointments "
    "(`details.conflicts`); send `allow_double_booking: true` to go ahead."
)


class OutcomeViewSet[M: Lead | Appointment | Task | KeySignal](TenantViewSet[M]):
    """Lists with django-filter, ``?search=`` (in the filterset) and ``?ordering=``."""

    filter_backends = [DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["created_at", "updated_at"]
    pagination_class: type[CursorPagination] = NewestFirst
    http_method_names = ["get", "post", "patch", "head", "options"]

    @property
    def tenant(self) -> TenantRequest:
        # Authentication bound the tenant on the request (see TenantViewSet).
        return cast(TenantRequest, self.request)

    def body(self, serializer: type[Any], **kwargs: Any) -> dict[str, Any]:
        data = serializer(data=self.request.data, context=self.get_serializer_context(), **kwargs)
        data.is_valid(raise_exception=True)
        return cast(dict[str, Any], data.validated_data)


class LeadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OutcomeViewSet[Lead]):
    """A tenant's leads, newest first. A rep sees the leads assigned to them."""

    queryset = Lead.objects.all()
    serializer_class = LeadSerializer
    filterset_class = LeadFilter
    roles = {"default": ALL_ROLES, "partial_update": OFFICE}

    def get_queryset(self) -> QuerySet[Lead]:
        tenant = self.tenant
        return selectors.visible_leads(tenant.company, user=tenant.user, role=tenant.role)

    @extend_schema(
        request=LeadUpdateSerializer,
        responses={
            200: LeadSerializer,
            409: OpenApiResponse(
                description="`active_lead_exists`: reopening a closed lead whose contact "
                "has another active lead."
            ),
        },
    )
    def partial_update(self, request: Request, pk: Any = None) -> Response:
        """Change status (written to the history with you as the actor and `reason`),
        rep, score or deal size (manager or CSR)."""
        lead = self.get_object()
        changes = self.body(LeadUpdateSerializer)
        try:
            lead = services.update_lead(
                self.tenant.company, lead, actor=self.tenant.user, changes=changes
            )
        except services.ActiveLeadExists:
            active = selectors.active_lead(self.tenant.company, lead.contact_id)
            raise ActiveLeadConflict(
                "The contact already has another active lead.",
                {"lead": getattr(active, "pk", None)},
            ) from None
        return Response(LeadSerializer(self.get_queryset().get(pk=lead.pk)).data)

    @extend_schema(responses={200: LeadHistorySerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def history(self, request: Request, pk: Any = None) -> Response:
        """Every status change of the lead, oldest first."""
        lead = self.get_object()
        rows = selectors.lead_history(self.tenant.company, lead)
        return Response(LeadHistorySerializer(rows, many=True).data)


class AppointmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OutcomeViewSet[Appointment]
):
    """Appointments, soonest first. A rep sees and updates the ones assigned to them."""

    queryset = Appointment.objects.all()
    serializer_class = AppointmentSerializer
    filterset_class = AppointmentFilter
    ordering_fields = ["scheduled_start", "created_at", "updated_at"]
    pagination_class = SoonestFirst
    roles = {"default": ALL_ROLES, "assign": OFFICE}

    def get_queryset(self) -> QuerySet[Appointment]:
        tenant = self.tenant
        return selectors.visible_appointments(tenant.company, user=tenant.user, role=tenant.role)

    @extend_schema(
        request=AppointmentUpdateSerializer,
        responses={200: AppointmentSerializer, 409: DOUBLE_BOOKING},
    )
    def partial_update(self, request: Request, pk: Any = None) -> Response:
        """Reschedule (start/end), cancel (status), record the outcome and deal size, or
        notes. Outcome `won` closes the lead won with the deal size; `lost` closes it lost."""
        appointment = self.get_object()
        changes = self.body(AppointmentUpdateSerializer, instance=appointment)
        allow = changes.pop("allow_double_booking", False)
        try:
            appointment = services.update_appointment(
                self.tenant.company,
                appointment,
                actor=self.tenant.user,
                changes=changes,
                allow_double_booking=allow,
            )
        except services.DoubleBooking as exc:
            raise _double_booking(exc) from None
        return self._output(appointment)

    @extend_schema(
        request=AssignSerializer, responses={200: AppointmentSerializer, 409: DOUBLE_BOOKING}
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def assign(self, request: Request, pk: Any = None) -> Response:
        """Put the appointment on a sales rep's schedule (manager or CSR); the lead gets
        the rep too if it has none."""
        appointment = self.get_object()
        body = self.body(AssignSerializer)
        try:
            appointment = services.assign_appointment(
                self.tenant.company,
                appointment,
                body["rep"].pk,
                allow_double_booking=body["allow_double_booking"],
            )
        except services.NotARep:
            raise ValidationError({"rep": ["Not an active sales rep of this company."]}) from None
        except services.DoubleBooking as exc:
            raise _double_booking(exc) from None
        return self._output(appointment)

    def _output(self, appointment: Appointment) -> Response:
        # Read back with its people joined; neither write takes it out of the caller's view.
        return Response(AppointmentSerializer(self.get_queryset().get(pk=appointment.pk)).data)


def _double_booking(exc: services.DoubleBooking) -> DoubleBookingConflict:
    return DoubleBookingConflict(
        "The rep already has an appointment at this time.", {"conflicts": exc.conflicts}
    )


class TaskViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    OutcomeViewSet[Task],
):
    """Tasks, newest first. A manager sees every task; anyone else the ones assigned to them."""

    queryset = Task.objects.all()
    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    roles = {"default": ALL_ROLES}

    def get_queryset(self) -> QuerySet[Task]:
        tenant = self.tenant
        return selectors.visible_tasks(tenant.company, user=tenant.user, role=tenant.role)

    @extend_schema(request=TaskCreateSerializer, responses={201: TaskSerializer})
    def create(self, request: Request) -> Response:
        """A manual task, assigned to you unless it names an assignee."""
        fields = self.body(TaskCreateSerializer)
        task = services.create_task(self.tenant.company, actor=self.tenant.user, **fields)
        return Response(self._data(task), status=status.HTTP_201_CREATED)

    @extend_schema(request=TaskUpdateSerializer, responses={200: TaskSerializer})
    def partial_update(self, request: Request, pk: Any = None) -> Response:
        """Change the description, due date, assignee or status."""
        task = self.get_object()
        changes = self.body(TaskUpdateSerializer)
        task = services.update_task(
            self.tenant.company, task, actor=self.tenant.user, changes=changes
        )
        return Response(self._data(task))

    @extend_schema(
        request=None,
        responses={
            200: TaskSerializer,
            409: OpenApiResponse(description="`task_cancelled`: reopen it first."),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def complete(self, request: Request, pk: Any = None) -> Response:
        """Mark the task done. Completing a task already done is a 200 that changes nothing."""
        task = self.get_object()
        try:
            task = services.complete_task(self.tenant.company, task, actor=self.tenant.user)
        except services.TaskCancelled:
            raise TaskCancelledConflict("This task is cancelled; reopen it first.") from None
        return Response(self._data(task))

    def _data(self, task: Task) -> dict[str, Any]:
        # Read back with its people joined, whoever it is assigned to now: the caller may
        # have just given it to someone else.
        fresh = selectors.task_with_people(self.tenant.company, task.pk)
        return cast(dict[str, Any], TaskSerializer(fresh).data)


class KeySignalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OutcomeViewSet[KeySignal]):
    """Key signals of calls, newest first (managers and CSRs)."""

    queryset = KeySignal.objects.all()
    serializer_class = KeySignalSerializer
    filterset_class = KeySignalFilter
    roles = {"default": OFFICE}

    def get_queryset(self) -> QuerySet[KeySignal]:
        tenant = self.tenant
        return selectors.visible_signals(tenant.company, user=tenant.user, role=tenant.role)

    @extend_schema(request=None, responses={200: KeySignalSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def acknowledge(self, request: Request, pk: Any = None) -> Response:
        """Record that you have seen it; the first acknowledgement is kept."""
        signal = services.acknowledge_signal(
            self.tenant.company, self.get_object(), actor=self.tenant.user
        )
        fresh = self.get_queryset().get(pk=signal.pk)
        return Response(KeySignalSerializer(fresh).data)
