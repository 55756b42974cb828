"""Ops' view of SMS: threads with their messages, and the consent ledger (read-only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from messaging import services
from messaging.models import ConsentEvent, Message, Thread
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
