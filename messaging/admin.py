"""Ops' view of SMS: threads with their messages, the consent ledger (read-only),
follow-ups (approve or cancel selected) and missed-call recoveries (stop selected)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from messaging import followups, services
from messaging.models import AiCall, ConsentEvent, FollowUp, Message, MissedCallRecovery, Thread
from otto.admin_base import ReadOnlyAdmin
from otto.models import User


class MessageInline(admin.TabularInline[Message, Thread]):
    model = Message
    fields = (
        "created_at",
        "direction",
        "kind",
        "status",
        "status_reason",
        "body",
        "error_code",
        "twilio_sid",
    )
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Thread | None = None) -> bool:
        return False


@admin.register(Thread)
class ThreadAdmin(ReadOnlyAdmin[Thread]):
    list_display = ["phone", "company", "contact", "last_message_at", "unread"]
    list_filter = ["company"]
    search_fields = ["phone", "contact__name"]
    readonly_fields = [
        "company",
        "contact",
        "phone",
        "last_message_at",
        "last_message_preview",
        "unread",
        "last_inbound_at",
        "created_at",
    ]
    inlines = [MessageInline]
    actions = ["opt_out"]

    @admin.action(description="Record an SMS opt-out for the selected threads' numbers")
    def opt_out(self, request: HttpRequest, queryset: QuerySet[Thread]) -> None:
        user = request.user if request.user.is_authenticated else None
        for thread in queryset.select_related("company"):
            services.opt_out(
                thread.company,
                phone=thread.phone,
                channel=ConsentEvent.Channel.SMS,
                actor=user,
                source=ConsentEvent.Source.ADMIN,
                note="recorded in the admin",
            )
        self.message_user(request, f"Opted out {queryset.count()} number(s).", messages.SUCCESS)


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin[ConsentEvent]):
    """The ledger is append-only: nothing here edits or deletes an event."""

    list_display = ["created_at", "company", "phone", "channel", "action", "source", "actor"]
    list_filter = ["company", "channel", "action", "source"]
    search_fields = ["phone"]
    readonly_fields = [
        "company",
        "phone",
        "channel",
        "action",
        "source",
        "message",
        "actor",
        "note",
        "disclosure_version",
        "evidence",
        "obtained_at",
        "created_at",
    ]


@admin.register(AiCall)
class AiCallAdmin(ReadOnlyAdmin[AiCall]):
    """AI follow-up calls: the outcome, the redacted transcript (the only one stored), and
    the consent the gate relied on, linked to its ledger event."""

    list_display = ["created_at", "company", "phone", "status", "outcome", "answered_by"]
    list_filter = ["company", "status", "answered_by"]
    search_fields = ["phone", "bland_call_id", "contact__name"]
    list_select_related = ["company"]
    readonly_fields = [
        "company",
        "contact",
        "phone",
        "call",
        "followup",
        "bland_call_id",
        "status",
        "status_reason",
        "disclosure_version",
        "disclosure_script",
        "consent_proof",
        "outcome",
        "answered_by",
        "duration_seconds",
        "summary",
        "transcript",
        "redaction_counts",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "placed_at",
        "completed_at",
        "created_at",
    ]
    exclude = ["consent"]

    @admin.display(description="consent (proof)")
    def consent_proof(self, obj: AiCall) -> str:
        consent = obj.consent
        if consent is None:
            return "-"
        url = reverse("admin:messaging_consentevent_change", args=[consent.pk])
        return format_html(
            '<a href="{}">{} opt-in of {}</a>: disclosure {}, {}',
            url,
            consent.channel,
            consent.created_at.date(),
            consent.disclosure_version or "-",
            consent.evidence or "no evidence",
        )


def _link(name: str, pk: int | None) -> str:
    if pk is None:
        return "—"
    return format_html('<a href="{}">{}</a>', reverse(f"admin:{name}_change", args=[pk]), pk)


def _staff(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyAdmin[FollowUp]):
    list_display = [
        "created_at",
        "company",
        "call_link",
        "contact",
        "channel",
        "status",
        "scheduled_for",
        "drafted_by",
        "approved_by",
        "status_reason",
    ]
    list_filter = ["company", "status", "channel", "drafted_by"]
    list_select_related = ["company", "contact", "approved_by"]
    search_fields = ["phone", "contact__name", "body"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    readonly_fields = [
        "company",
        "call_link",
        "contact",
        "phone",
        "channel",
        "status",
        "status_reason",
        "body",
        "drafted_by",
        "scheduled_for",
        "approved_by",
        "approved_at",
        "message_link",
        "claimed_at",
        "created_at",
        "updated_at",
    ]
    actions = ["approve_selected", "cancel_selected"]

    @admin.display(description="call")
    def call_link(self, followup: FollowUp) -> str:
        return _link("calls_call", followup.call_id)

    @admin.display(description="message")
    def message_link(self, followup: FollowUp) -> str:
        message = followup.message
        if message is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:messaging_thread_change", args=[message.thread_id]),
            f"message {message.pk} ({message.status})",
        )

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[FollowUp],
        step: Callable[[FollowUp], object],
        done: str,
    ) -> None:
        """``step`` on each row, under the row's own company; rows it does not apply to
        are counted, not failed."""
        count = skipped = 0
        for followup in queryset.select_related("company", "contact"):
            try:
                step(followup)
            except followups.IllegalTransition:
                skipped += 1
            else:
                count += 1
        self.message_user(request, f"{done} {count} follow-up(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"Skipped {skipped}: not in a status that allows it.", messages.WARNING
            )

    @admin.action(description="Approve the selected draft follow-ups", permissions=["change"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[FollowUp]) -> None:
        user = _staff(request)
        self._each(
            request,
            queryset,
            lambda followup: followups.approve(followup.company, followup, actor=user),
            "Approved",
        )

    @admin.action(description="Cancel the selected pending follow-ups", permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[FollowUp]) -> None:
        user = _staff(request)
        self._each(
            request,
            queryset,
            lambda followup: followups.cancel(followup.company, followup, actor=user),
            "Cancelled",
        )


class RecoveryMessageInline(admin.TabularInline[Message, MissedCallRecovery]):
    """The recovery's steps: the texts it sent, deferred or had blocked."""

    model = Message
    fk_name = "recovery"
    fields = ("created_at", "status", "status_reason", "body", "scheduled_for", "error_code")
    readonly_fields = fields
    ordering = ["created_at", "id"]
    extra = 0
    can_delete = False
    show_change_link = False
    verbose_name = "step message"

    def has_add_permission(
        self, request: HttpRequest, obj: MissedCallRecovery | None = None
    ) -> bool:
        return False


STOPPED_IN_ADMIN = "stopped in the admin"


@admin.register(MissedCallRecovery)
class MissedCallRecoveryAdmin(ReadOnlyAdmin[MissedCallRecovery]):
    list_display = [
        "started_at",
        "company",
        "call_link",
        "contact",
        "status",
        "step",
        "next_action_at",
        "stopped_reason",
    ]
    list_filter = ["company", "status"]
    list_select_related = ["company", "contact"]
    search_fields = ["contact__phone", "contact__name"]
    ordering = ["-started_at", "-id"]
    show_full_result_count = False
    readonly_fields = [
        "company",
        "call_link",
        "contact",
        "status",
        "step",
        "next_action_at",
        "stopped_reason",
        "claimed_at",
        "started_at",
        "cooldown_until",
        "created_at",
        "updated_at",
    ]
    inlines = [RecoveryMessageInline]
    actions = ["stop_selected"]

    @admin.display(description="call")
    def call_link(self, row: MissedCallRecovery) -> str:
        return _link("calls_call", row.call_id)

    @admin.action(description="Stop the selected active recoveries", permissions=["change"])
    def stop_selected(self, request: HttpRequest, queryset: QuerySet[MissedCallRecovery]) -> None:
        user = _staff(request)
        reason = f"{STOPPED_IN_ADMIN} by {user.get_username()}" if user else STOPPED_IN_ADMIN
        stopped = 0
        for row in queryset.select_related("company"):
            stopped += services.stop_recoveries(
                row.company, MissedCallRecovery.Status.STOPPED, reason, pk=row.pk
            )
        self.message_user(request, f"Stopped {stopped} recovery(ies).", messages.SUCCESS)
