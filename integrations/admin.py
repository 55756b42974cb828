"""The webhook inbox in the admin: every delivery as received, and a replay action.

Staff only (Django's admin login). Events are read-only evidence: nobody edits or deletes a
delivery here; ops replay it, which re-verifies the signature where one can be checked,
re-resolves the tenant and re-runs processing, never moving an event to another tenant.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from integrations import services
from integrations.models import WebhookEvent
from otto.admin_base import ReadOnlyAdmin


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin[WebhookEvent]):
    list_display = (
        "id",
        "provider",
        "event_type",
        "company",
        "status",
        "attempts",
        "received_at",
        "processed_at",
    )
    list_filter = ("provider", "status", "company")
    search_fields = ("dedupe_key", "event_type")
    list_select_related = ("company",)
    date_hierarchy = "received_at"
    ordering = ("-received_at",)
    # The inbox grows by the million; an exact COUNT(*) per page view is not worth it.
    show_full_result_count = False
    actions = ("replay_selected",)
    fields = (
        "provider",
        "event_type",
        "company",
        "status",
        "replay_button",
        "dedupe_key",
        "attempts",
        "last_error",
        "received_at",
        "processed_at",
        "pretty_headers",
        "pretty_body",
    )
    readonly_fields = fields

    @admin.display(description="Headers")
    def pretty_headers(self, event: WebhookEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(event.headers, indent=2, sort_keys=True))

    @admin.display(description="Body")
    def pretty_body(self, event: WebhookEvent) -> str:
        if not event.body:
            # Only a settled event's body is ever blanked (docs/retention.md).
            return "None: blanked under the tenant's webhook-body retention window."
        try:
            text = json.dumps(json.loads(event.body), indent=2)
        except ValueError:
            text = event.body
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", text)

    @admin.display(description="Replay")
    def replay_button(self, event: WebhookEvent) -> str:
        if event.pk is None:
            return "-"
        url = reverse("admin:integrations_webhookevent_replay", args=[event.pk])
        # formaction: the change form itself is posted (with its CSRF token) to the replay URL.
        return format_html(
            '<button type="submit" formaction="{}" formmethod="post" class="button">'
            "Verify again and re-process</button>",
            url,
        )

    # --- replay ---------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        replay = self.admin_site.admin_view(require_POST(self.replay_view))
        return [
            path("<int:event_id>/replay/", replay, name="integrations_webhookevent_replay"),
            *super().get_urls(),
        ]

    def replay_view(self, request: HttpRequest, event_id: int) -> HttpResponseRedirect:
        if not self.has_change_permission(request):
            raise PermissionDenied
        event = get_object_or_404(WebhookEvent, pk=event_id)
        self._replay(request, [event])
        return HttpResponseRedirect(
            reverse("admin:integrations_webhookevent_change", args=[event_id])
        )

    @admin.action(
        description="Replay selected events (verify again and re-process)", permissions=["change"]
    )
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        self._replay(request, list(queryset.order_by("received_at")))

    def _replay(self, request: HttpRequest, events: list[WebhookEvent]) -> None:
        outcomes: dict[str, int] = {}
        for event in events:
            try:
                status = services.replay_event(event, actor=request.user)
            except services.ReplayRefused as exc:
                self.message_user(request, f"Not replayed: {exc}", messages.ERROR)
                continue
            outcomes[status] = outcomes.get(status, 0) + 1
        if outcomes:
            summary = ", ".join(f"{count} {status}" for status, count in sorted(outcomes.items()))
            self.message_user(request, f"Replayed: {summary}.", messages.SUCCESS)
