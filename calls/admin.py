"""Calls in the admin: the pipeline state of every call, its recording and its raw webhooks.

Staff only (Django's admin login), across tenants: ops see every company's calls. Nothing is
edited here. Ops re-run ingest or re-fetch a recording, one call from its page or many from
the list; each call is handed to the ingest service on its own, under its own company.

The stage filter lists every pipeline stage, the in-progress ones too (``ingesting``,
``transcribing``: a worker holds the call until ``next_attempt_at``, its lease). A re-fetch
keeps the stored recording playable until the new one is in storage.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from calls import admin_pipeline, recordings, retries
from calls.models import Call, RecordingAccess, Transcript
from otto import audit
from otto.admin_base import ReadOnlyAdmin
from otto.logging import mask_phone
from otto.models import AuditAction
from otto.services import check_phone


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "company",
        "customer",
        "direction",
        "answered",
        "duration",
        "stage",
        "attempts",
    )
    list_filter = ("company", "stage", "answered", ("started_at", admin.DateFieldListFilter))
    # Searched in get_search_results: exact matches that stay cheap at a million rows.
    search_fields = ("external_id",)
    search_help_text = "A full phone number (any format), or a CallRail id (CAL… or numeric)."
    list_select_related = ("company",)
    ordering = ("-started_at",)
    # A million rows: no exact COUNT(*) per page view, and no date_hierarchy (its DISTINCT
    # over every date would scan them all); the date list filter costs nothing.
    show_full_result_count = False
    # Any length: analysis/admin.py adds its re-run of analysis.
    actions: tuple[str, ...] = (
        "retry_failed",
        "rerun_transcription",
        "swap_speaker_roles",
        "rerun_ingest",
        "refetch_recording",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "company",
                    ("source", "external_id", "legacy_id"),
                    ("direction", "answered", "voicemail"),
                    ("started_at", "duration_seconds"),
                    ("customer_number", "customer_name", "customer_city", "customer_state"),
                    "tracking_number",
                    ("contact", "handled_by"),
                )
            },
        ),
        ("Recording", {"fields": ("recording_player", "recording_facts")}),
        (
            "Pipeline",
            {
                "fields": (
                    "pipeline_actions",
                    ("stage", "stage_reason", "stage_changed_at"),
                    ("attempts", "next_attempt_at"),
                    "last_error",
                )
            },
        ),
        ("Stage history", {"fields": ("stage_history",)}),
        ("Transcript (redacted)", {"fields": ("transcript_roles", "transcript_view")}),
        ("CallRail attribution", {"fields": ("source_name", "campaign", "tags", "note")}),
        ("Webhooks", {"fields": ("webhook_event_links",)}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [
            name
            for fieldset in self.fieldsets
            for line in fieldset[1]["fields"]
            for name in (line if isinstance(line, tuple | list) else (line,))
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Call]:
        return super().get_queryset(request).select_related("contact", "handled_by")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Call], term: str):
        term = term.strip()
        if not term:
            return queryset, False
        condition = Q(external_id=term) | Q(legacy_id=term)
        try:
            phone = check_phone(term)
        except DjangoValidationError:
            pass
        else:
            condition |= Q(customer_number=phone) | Q(tracking_number=phone)
        return queryset.filter(condition), False

    # --- columns ----------------------------------------------------------------------------

    @admin.display(description="Customer", ordering="customer_number")
    def customer(self, call: Call) -> str:
        return mask_phone(call.customer_number) if call.customer_number else "-"

    @admin.display(description="Duration", ordering="duration_seconds")
    def duration(self, call: Call) -> str:
        if call.duration_seconds is None:
            return "-"
        minutes, seconds = divmod(call.duration_seconds, 60)
        return f"{minutes}:{seconds:02d}"

    # --- detail -----------------------------------------------------------------------------

    @admin.display(description="Player")
    def recording_player(self, call: Call) -> str:
        if call.recording_purged_at is not None:
            return recordings.missing_reason(call)
        if not call.recording:
            return "No recording."
        # preload="none": the audited link is fetched when someone presses play.
        url = reverse("admin:calls_call_recording", args=[call.pk])
        return format_html('<audio controls preload="none" src="{}"></audio>', url)

    @admin.display(description="Stored")
    def recording_facts(self, call: Call) -> str:
        if not call.recording:
            return "-"
        return format_html(
            "{} bytes, {} s, {} · sha256 {}",
            call.recording_size if call.recording_size is not None else "?",
            call.recording_duration_seconds if call.recording_duration_seconds else "?",
            call.recording_content_type or "?",
            call.recording_sha256 or "?",
        )

    @admin.display(description="Raw webhook events")
    def webhook_event_links(self, call: Call) -> str:
        events = call.webhook_events.order_by("received_at")
        if not events:
            return "None."
        return format_html_join(
            mark_safe("<br>"),  # noqa: S308 - a constant
            '<a href="{}">#{} {} · {} · {}</a>',
            (
                (
                    reverse("admin:integrations_webhookevent_change", args=[event.pk]),
                    event.pk,
                    event.event_type or event.provider,
                    event.get_status_display(),
                    f"{event.received_at:%Y-%m-%d %H:%M:%S %Z}",
                )
                for event in events
            ),
        )

    @admin.display(description="Re-run")
    def pipeline_actions(self, call: Call) -> str:
        if call.pk is None:
            return "-"
        # formaction: the change form itself is posted (with its CSRF token) to these URLs.
        button = (
            '<button type="submit" formaction="{}" formmethod="post" class="button">{}</button>'
        )
        buttons = []
        if call.stage == Call.Stage.FAILED:
            buttons.append((reverse("admin:calls_call_retry", args=[call.pk]), "Retry"))
        buttons += [
            (
                reverse("admin:calls_call_retry", args=[call.pk]) + "?from_stage=transcription",
                "Re-run transcription",
            ),
            (reverse("admin:calls_call_reingest", args=[call.pk]), "Re-run ingest"),
            (reverse("admin:calls_call_refetch_recording", args=[call.pk]), "Re-fetch recording"),
        ]
        return format_html_join(" ", button, buttons)

    @admin.display(description="Moves (oldest first)")
    def stage_history(self, call: Call) -> str:
        changes = call.stage_changes.select_related("actor").order_by("created_at", "pk")
        if not changes:
            return "None recorded."
        return format_html_join(
            mark_safe("<br>"),  # noqa: S308 - a constant
            "{} · {} → {} · {} {}",
            (
                (
                    f"{change.created_at:%Y-%m-%d %H:%M:%S %Z}",
                    change.from_stage,
                    change.to_stage,
                    f"by {change.actor.email} ·" if change.actor else "",
                    change.reason,
                )
                for change in changes
            ),
        )

    @admin.display(description="Speaker roles")
    def transcript_roles(self, call: Call) -> str:
        transcript = Transcript.objects.filter(call=call).first()
        if transcript is None:
            return "-"
        corrected = (
            f", corrected {transcript.roles_corrected_at:%Y-%m-%d %H:%M}"
            if transcript.roles_corrected_at
            else ""
        )
        return format_html(
            "{} (confidence {}, {}{}) · redacted: {}",
            ", ".join(f"speaker {k} = {v}" for k, v in sorted(transcript.roles.items())) or "-",
            transcript.roles_confidence if transcript.roles_confidence is not None else "?",
            transcript.roles_method or "?",
            corrected,
            transcript.redaction_counts or "nothing",
        )

    @admin.display(description="Utterances")
    def transcript_view(self, call: Call) -> str:
        transcript = Transcript.objects.filter(call=call).first()
        if transcript is None:
            return "No transcript."
        return format_html_join(
            mark_safe("<br>"),  # noqa: S308 - a constant
            "<b>{}</b> [{}–{} s] {}",
            (
                (
                    u.get("role") or f"speaker {u.get('speaker')}",
                    u.get("start"),
                    u.get("end"),
                    u.get("text"),
                )
                for u in transcript.utterances
            ),
        )

    # --- URLs: the audited recording link, and the one-call actions ---------------------

    def get_urls(self):
        def view(method, func):
            return self.admin_site.admin_view(method(func))

        return [
            # The pipeline page and its actions (calls.admin_pipeline).
            *admin_pipeline.urls(self),
            path(
                "<int:call_id>/recording/",
                view(require_GET, self.recording_view),
                name="calls_call_recording",
            ),
            path(
                "<int:call_id>/retry/",
                view(require_POST, self.retry_view),
                name="calls_call_retry",
            ),
            path(
                "<int:call_id>/reingest/",
                view(require_POST, self.reingest_view),
                name="calls_call_reingest",
            ),
            path(
                "<int:call_id>/refetch-recording/",
                view(require_POST, self.refetch_recording_view),
                name="calls_call_refetch_recording",
            ),
            *super().get_urls(),
        ]

    def recording_view(self, request: HttpRequest, call_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        call = get_object_or_404(Call, pk=call_id)
        try:
            return recordings.redirect_to_recording(call, request)
        except recordings.NoRecording:
            raise Http404(recordings.missing_reason(call)) from None

    def retry_view(self, request: HttpRequest, call_id: int) -> HttpResponseRedirect:
        if not self.has_change_permission(request):
            raise PermissionDenied
        call = get_object_or_404(Call.objects.select_related("company"), pk=call_id)
        from_stage = request.GET.get("from_stage") or None
        if from_stage is not None and from_stage not in retries.FROM_STAGES:
            raise Http404("No such stage.")
        self._retry(request, [call], from_stage=from_stage)
        return HttpResponseRedirect(reverse("admin:calls_call_change", args=[call_id]))

    def reingest_view(self, request: HttpRequest, call_id: int) -> HttpResponseRedirect:
        return self._one(request, call_id, refetch_recording=False)

    def refetch_recording_view(self, request: HttpRequest, call_id: int) -> HttpResponseRedirect:
        return self._one(request, call_id, refetch_recording=True)

    def _one(self, request: HttpRequest, call_id: int, *, refetch_recording: bool):
        if not self.has_change_permission(request):
            raise PermissionDenied
        call = get_object_or_404(Call.objects.select_related("company"), pk=call_id)
        self._request_ingest(request, [call], refetch_recording=refetch_recording)
        return HttpResponseRedirect(reverse("admin:calls_call_change", args=[call_id]))

    # --- bulk actions -------------------------------------------------------------------------

    @admin.action(description="Retry the selected failed calls", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Call]) -> None:
        self._retry(request, queryset.select_related("company"), from_stage=None)

    @admin.action(description="Re-run transcription of the selected calls", permissions=["change"])
    def rerun_transcription(self, request: HttpRequest, queryset: QuerySet[Call]) -> None:
        self._retry(request, queryset.select_related("company"), from_stage="transcription")

    @admin.action(description="Swap speaker roles (agent ↔ customer)", permissions=["change"])
    def swap_speaker_roles(self, request: HttpRequest, queryset: QuerySet[Call]) -> None:
        count = 0
        for call in queryset:
            try:
                retries.correct_roles(call, actor=request.user, swap=True)
                count += 1
            except retries.NoTranscript:
                continue
        self.message_user(request, f"Speaker roles swapped on {count} call(s).", messages.SUCCESS)

    def _retry(self, request: HttpRequest, calls, *, from_stage: str | None) -> None:
        done, refused = 0, []
        # One call at a time, each under its own company; every retry is audited.
        for call in calls:
            try:
                retries.retry_stage(call, actor=request.user, from_stage=from_stage)
                done += 1
            except retries.RetryRefused as exc:
                refused.append(f"call {call.pk}: {exc}")
        if done:
            self.message_user(request, f"Retry requested for {done} call(s).", messages.SUCCESS)
        for message in refused[:10]:
            self.message_user(request, message, messages.WARNING)

    @admin.action(description="Re-run ingest for the selected calls", permissions=["change"])
    def rerun_ingest(self, request: HttpRequest, queryset: QuerySet[Call]) -> None:
        self._request_ingest(request, queryset, refetch_recording=False)

    @admin.action(
        description="Re-fetch the recording of the selected calls", permissions=["change"]
    )
    def refetch_recording(self, request: HttpRequest, queryset: QuerySet[Call]) -> None:
        self._request_ingest(request, queryset, refetch_recording=True)

    def _request_ingest(self, request: HttpRequest, calls, *, refetch_recording: bool) -> None:
        # Imported here: the admin loads with every process; the ingest service only here.
        from calls.services import request_ingest

        what = "Recording re-fetch" if refetch_recording else "Ingest"
        count = 0
        # Each call goes to the service on its own: it carries its company, so a selection
        # spanning tenants never mixes them.
        for call in calls:
            if request_ingest(call, refetch_recording=refetch_recording):
                audit.record(
                    AuditAction.CALL_RETRIED,
                    company=call.company,
                    actor=request.user,
                    target_type="call",
                    target_id=call.pk,
                    changes={"from_stage": "recording" if refetch_recording else "ingest"},
                )
            count += 1
        self.message_user(request, f"{what} requested for {count} call(s).", messages.SUCCESS)


@admin.register(RecordingAccess)
class RecordingAccessAdmin(ReadOnlyAdmin):
    """The audit of recording links: who asked for which call's audio, from where."""

    list_display = ("accessed_at", "company", "call", "user", "ip_address")
    list_filter = ("company", ("accessed_at", admin.DateFieldListFilter))
    search_fields = ("=call__external_id", "user__email")
    list_select_related = ("company", "call", "user")
    raw_id_fields = ("call", "user")
    ordering = ("-accessed_at",)
    show_full_result_count = False
    fields = ("accessed_at", "company", "call", "user", "ip_address")
    readonly_fields = fields

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
