"""Ops' view of SMS: threads with their messages, and the consent ledger (read-only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from messaging import services
from messaging.models import AiCall, ConsentEvent, Message, Thread
from otto.admin_base import ReadOnlyAdmin


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
