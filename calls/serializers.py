"""API shapes for calls (DESIGN.md §5 minimum field names). Read-only: calls come from ingest.

No storage path ever leaves the API: a recording is described by its size, duration and
type, and fetched through ``calls/{id}/recording/``.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calls.models import Call


class ContactSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    phone = serializers.CharField()


class UserSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()


class RecordingSerializer(serializers.Serializer):
    size = serializers.IntegerField(source="recording_size", allow_null=True)
    duration_seconds = serializers.IntegerField(
        source="recording_duration_seconds", allow_null=True
    )
    content_type = serializers.CharField(source="recording_content_type")
    url = serializers.SerializerMethodField(help_text="Redirects to a short-lived link.")

    def get_url(self, call: Call) -> str:
        return reverse("call-recording", args=[call.pk])


class CallSerializer(serializers.ModelSerializer):
    """A list row: what a call log shows, with no extra query per row."""

    contact = ContactSummarySerializer(allow_null=True, read_only=True)
    handled_by = UserSummarySerializer(allow_null=True, read_only=True)
    has_recording = serializers.SerializerMethodField()

    class Meta:
        model = Call
        fields = [
            "id",
            "external_id",
            "stage",
            "started_at",
            "duration_seconds",
            "answered",
            "voicemail",
            "direction",
            "customer_number",
            "customer_name",
            "tracking_number",
            "contact",
            "handled_by",
            "tags",
            "has_recording",
        ]
        read_only_fields = fields

    def get_has_recording(self, call: Call) -> bool:
        return bool(call.recording)


class CallDetailSerializer(CallSerializer):
    recording = serializers.SerializerMethodField()

    class Meta(CallSerializer.Meta):
        fields = [
            *CallSerializer.Meta.fields,
            "source",
            "legacy_id",
            "customer_city",
            "customer_state",
            "source_name",
            "campaign",
            "note",
            "recording",
            "stage_reason",
            "stage_changed_at",
            "attempts",
            "next_attempt_at",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(RecordingSerializer(allow_null=True))
    def get_recording(self, call: Call) -> dict[str, Any] | None:
        return RecordingSerializer(call).data if call.recording else None
