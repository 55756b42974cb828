"""API shapes for leads, appointments, tasks and signals (DESIGN §9.3 field names).

Output serializers are read-only; each write has its own input serializer, validated
against the caller's company before a service runs (input → service → output). People
and contacts are shown as small nested objects, as on calls; on input they are ids.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from django.utils import timezone
from rest_framework import serializers

from appointments import selectors
from appointments.models import Appointment, KeySignal, Lead, LeadStatusChange, Task
from calls.models import Call
from calls.selectors import visible_calls
from calls.serializers import ContactSummarySerializer, UserSummarySerializer
from otto import selectors as otto_selectors
from otto.auth import TenantRequest
from otto.models import Role, User


def deal_size_field() -> serializers.DecimalField:
    """Money as the models keep it: 12 digits, 2 decimals, never negative."""
    return serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal(0), required=False, allow_null=True
    )


class LeadSerializer(serializers.ModelSerializer[Lead]):
    contact = ContactSummarySerializer(read_only=True)
    assigned_rep = UserSummarySerializer(allow_null=True, read_only=True)

    class Meta:
        model = Lead
        fields = [
            "id",
            "contact",
            "status",
            "source",
            "assigned_rep",
            "score",
            "deal_size",
            "last_contacted_at",
            "is_active",
            "closed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class LeadHistorySerializer(serializers.ModelSerializer[LeadStatusChange]):
    actor = UserSummarySerializer(allow_null=True, read_only=True, help_text="Null: the pipeline.")

    class Meta:
        model = LeadStatusChange
        fields = [
            "id",
            "lead",
            "from_status",
            "to_status",
            "reason",
            "actor",
            "call",
            "analysis_version",
            "created_at",
        ]
        read_only_fields = fields


class AppointmentSerializer(serializers.ModelSerializer[Appointment]):
    contact = ContactSummarySerializer(read_only=True)
    assigned_rep = UserSummarySerializer(allow_null=True, read_only=True)
    created_by = UserSummarySerializer(allow_null=True, read_only=True)
    latitude = serializers.FloatField(allow_null=True, read_only=True)
    longitude = serializers.FloatField(allow_null=True, read_only=True)

    class Meta:
        model = Appointment
        fields = [
            "id",
            "lead",
            "contact",
            "call",
            "scheduled_start",
            "scheduled_end",
            "address",
            "latitude",
            "longitude",
            "geocode_status",
            "geocode_error",
            "service_type",
            "status",
            "outcome",
            "deal_size",
            "assigned_rep",
            "notes",
            "analysis_version",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class TaskSerializer(serializers.ModelSerializer[Task]):
    contact = ContactSummarySerializer(allow_null=True, read_only=True)
    assignee = UserSummarySerializer(allow_null=True, read_only=True)
    completed_by = UserSummarySerializer(allow_null=True, read_only=True)
    created_by = UserSummarySerializer(allow_null=True, read_only=True)
    overdue = serializers.SerializerMethodField(help_text="Open, and due before now.")

    class Meta:
        model = Task
        fields = [
            "id",
            "type",
            "description",
            "due_at",
            "status",
            "overdue",
            "assignee",
            "contact",
            "lead",
            "call",
            "source",
            "completed_at",
            "completed_by",
            "created_by",
            "analysis_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_overdue(self, task: Task) -> bool:
        return (
            task.status == Task.Status.OPEN
            and task.due_at is not None
            and task.due_at < timezone.now()
        )


class KeySignalSerializer(serializers.ModelSerializer[KeySignal]):
    contact = ContactSummarySerializer(allow_null=True, read_only=True)
    acknowledged_by = UserSummarySerializer(allow_null=True, read_only=True)

    class Meta:
        model = KeySignal
        fields = [
            "id",
            "type",
            "severity",
            "call",
            "contact",
            "detail",
            "analysis_version",
            "acknowledged_at",
            "acknowledged_by",
            "created_at",
        ]
        read_only_fields = fields


# --- input ---------------------------------------------------------------------------------


class TenantInput(serializers.Serializer[Any]):
    """Input checked against the caller's company and role (``context["request"]``)."""

    @property
    def tenant(self) -> TenantRequest:
        return cast(TenantRequest, self.context["request"])

    def member(self, user_id: int | None, *, role: str | None = None) -> User | None:
        """The active member ``user_id`` names; another tenant's user is not one."""
        if user_id is None:
            return None
        user = otto_selectors.active_member(self.tenant.company, user_id, role=role)
        if user is None:
            kind = "sales rep" if role == Role.SALES_REP else "member"
            raise serializers.ValidationError(f"Not an active {kind} of this company.")
        return user


class LeadUpdateSerializer(TenantInput):
    status = serializers.ChoiceField(choices=Lead.Status.choices, required=False)
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=255, help_text="Kept in the history."
    )
    assigned_rep = serializers.IntegerField(
        required=False, allow_null=True, help_text="An active sales rep's user id; null unassigns."
    )
    score = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=100)
    deal_size = deal_size_field()

    def validate_assigned_rep(self, value: int | None) -> User | None:
        return self.member(value, role=Role.SALES_REP)


class AppointmentUpdateSerializer(TenantInput):
    scheduled_start = serializers.DateTimeField(required=False)
    scheduled_end = serializers.DateTimeField(required=False)
    status = serializers.ChoiceField(choices=Appointment.Status.choices, required=False)
    outcome = serializers.ChoiceField(choices=Appointment.Outcome.choices, required=False)
    deal_size = deal_size_field()
    notes = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    service_type = serializers.CharField(required=False, allow_blank=True, max_length=200)
    allow_double_booking = serializers.BooleanField(
        required=False, default=False, help_text="Move onto a time the rep already has booked."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        appointment = cast(Appointment, self.instance)
        start = attrs.get("scheduled_start", appointment.scheduled_start)
        end = attrs.get("scheduled_end", appointment.scheduled_end)
        if end <= start:
            raise serializers.ValidationError({"scheduled_end": ["Must be after the start."]})
        return attrs


class AssignSerializer(TenantInput):
    rep = serializers.IntegerField(help_text="An active sales rep's user id.")
    allow_double_booking = serializers.BooleanField(
        required=False, default=False, help_text="Assign even if the rep is booked then."
    )

    def validate_rep(self, value: int) -> User | None:
        return self.member(value, role=Role.SALES_REP)


class TaskWriteSerializer(TenantInput):
    """Shared by create and PATCH: the links are checked against what the caller sees."""

    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    assignee = serializers.IntegerField(
        required=False, allow_null=True, help_text="An active member's user id."
    )

    def validate_assignee(self, value: int | None) -> User | None:
        return self.member(value)


class TaskCreateSerializer(TaskWriteSerializer):
    type = serializers.ChoiceField(choices=Task.Type.choices)
    contact = serializers.IntegerField(required=False, allow_null=True)
    lead = serializers.IntegerField(required=False, allow_null=True)
    call = serializers.IntegerField(required=False, allow_null=True)

    def _visible(self, queryset: Any, value: int | None) -> Any:
        if value is None:
            return None
        found = queryset.filter(pk=value).first()
        if found is None:
            raise serializers.ValidationError("Not found.")
        return found

    def validate_contact(self, value: int | None) -> Any:
        tenant = self.tenant
        rows = selectors.visible_contacts(tenant.company, user=tenant.user, role=tenant.role)
        return self._visible(rows, value)

    def validate_lead(self, value: int | None) -> Any:
        tenant = self.tenant
        rows = selectors.visible_leads(tenant.company, user=tenant.user, role=tenant.role)
        return self._visible(rows, value)

    def validate_call(self, value: int | None) -> Any:
        tenant = self.tenant
        rows = visible_calls(
            Call.objects.filter(company=tenant.company), user=tenant.user, role=tenant.role
        )
        return self._visible(rows, value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        contact = attrs.get("contact")
        contact_id = contact.pk if contact is not None else None
        for link in ("lead", "call"):
            linked_contact = getattr(attrs.get(link), "contact_id", None)
            if linked_contact is None:
                continue
            if contact_id is None:
                contact_id = linked_contact
            elif linked_contact != contact_id:
                raise serializers.ValidationError({link: ["Belongs to another contact."]})
        return attrs


class TaskUpdateSerializer(TaskWriteSerializer):
    status = serializers.ChoiceField(choices=Task.Status.choices, required=False)
