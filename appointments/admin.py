"""Outcomes in the admin: leads with their history, appointments (a map link, the geocode
status and its reason), tasks and key signals, across tenants for ops. Nothing is edited
here: people change outcomes through the API; ops re-apply a call's outcomes with the
action this module adds to the calls admin (audited as the call's stage change)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from appointments import pipeline
from appointments.models import Appointment, KeySignal, Lead, LeadStatusChange, Task
from calls.models import Call
from otto.admin_base import ReadOnlyAdmin


class LeadHistoryInline(admin.TabularInline[LeadStatusChange, Lead]):
    model = LeadStatusChange
    fields = (
        "created_at",
        "from_status",
        "to_status",
        "reason",
        "actor",
        "call",
        "analysis_version",
    )
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Lead | None = None) -> bool:
        return False


@admin.register(Lead)
class LeadAdmin(ReadOnlyAdmin[Lead]):
    list_display = ("created_at", "company", "contact", "status", "score", "assigned_rep", "source")
    list_filter = ("company", "status", "is_active")
    list_select_related = ("company", "contact", "assigned_rep")
    search_fields = ("contact__phone", "contact__name")
    ordering = ("-created_at",)
    show_full_result_count = False
    inlines = (LeadHistoryInline,)


@admin.register(Appointment)
class AppointmentAdmin(ReadOnlyAdmin[Appointment]):
    list_display = (
        "scheduled_start",
        "company",
        "contact",
        "status",
        "assigned_rep",
        "address",
        "geocode_status",
        "map_link",
    )
    list_filter = ("company", "status", "outcome", "geocode_status")
    list_select_related = ("company", "contact", "assigned_rep")
    search_fields = ("address", "contact__phone")
    ordering = ("-scheduled_start",)
    show_full_result_count = False
    readonly_fields = ("map_link",)

    @admin.display(description="map")
    def map_link(self, appointment: Appointment) -> str:
        if appointment.latitude is None or appointment.longitude is None:
            return appointment.geocode_error or "—"
        return format_html(
            '<a href="https://www.google.com/maps/search/?api=1&amp;query={},{}" '
            'target="_blank" rel="noopener">{}, {}</a>',
            appointment.latitude,
            appointment.longitude,
            appointment.latitude,
            appointment.longitude,
        )


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin[Task]):
    list_display = ("created_at", "company", "type", "status", "due_at", "assignee", "source")
    list_filter = ("company", "status", "source", "type")
    list_select_related = ("company", "assignee")
    search_fields = ("description",)
    ordering = ("-created_at",)
    show_full_result_count = False


@admin.register(KeySignal)
class KeySignalAdmin(ReadOnlyAdmin[KeySignal]):
    list_display = ("created_at", "company", "type", "severity", "call", "acknowledged_at")
    list_filter = ("company", "type", "severity")
    list_select_related = ("company", "call")
    ordering = ("-created_at",)
    show_full_result_count = False


@admin.action(description="Re-apply the outcomes of the selected calls", permissions=["change"])
def reapply_outcomes(
    model_admin: admin.ModelAdmin[Call], request: HttpRequest, queryset: QuerySet[Call]
) -> None:
    done, refused = 0, []
    # One call at a time, each under its own company; each is audited as a stage change.
    for call in queryset.select_related("company"):
        try:
            pipeline.reapply_outcomes(call, actor=request.user)
            done += 1
        except pipeline.ReapplyRefused as exc:
            refused.append(str(exc))
    if done:
        model_admin.message_user(
            request, f"Outcomes re-applied for {done} call(s).", messages.SUCCESS
        )
    for message in refused[:10]:
        model_admin.message_user(request, message, messages.WARNING)


# calls' admin may not import appointments: the action joins it from here, once calls'
# admin is registered (INSTALLED_APPS puts calls first, and autodiscover follows it).
_calls_admin = admin.site.get_model_admin(Call)
_calls_admin.actions = (*(_calls_admin.actions or ()), reapply_outcomes)
