"""API shapes for calls (DESIGN.md §5 minimum field names). Read-only: calls come from ingest.

No storage path ever leaves the API: a recording is described by its size, duration and
type, and fetched through ``calls/{id}/recording/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calls.models import Call, CallStageChange, Transcript
from otto.selectors import active_member


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


class UtteranceSerializer(serializers.Serializer):
    speaker = serializers.IntegerField()
    role = serializers.CharField(help_text="agent or customer")
    start = serializers.FloatField(help_text="seconds")
    end = serializers.FloatField(help_text="seconds")
    text = serializers.CharField(help_text="Redacted: [CARD], [CVV], [SSN], [BANK_ACCOUNT].")
    confidence = serializers.FloatField(allow_null=True)


class TranscriptSerializer(serializers.ModelSerializer):
    """The redacted transcript: the raw text is never stored, so it is never shown."""

    utterances = UtteranceSerializer(many=True, read_only=True)
    roles_corrected_by = UserSummarySerializer(allow_null=True, read_only=True)

    class Meta:
        model = Transcript
        fields = [
            "text",
            "utterances",
            "language",
            "duration_seconds",
            "word_count",
            "provider",
            "model",
            "roles",
            "roles_confidence",
            "roles_method",
            "roles_corrected_by",
            "roles_corrected_at",
            "redaction_counts",
            "purged_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class StageChangeSerializer(serializers.ModelSerializer):
    # Plain strings: one call stage enum in the schema (the call's own ``stage``).
    from_stage = serializers.CharField(read_only=True)
    to_stage = serializers.CharField(read_only=True)
    actor = UserSummarySerializer(allow_null=True, read_only=True)

    class Meta:
        model = CallStageChange
        fields = ["from_stage", "to_stage", "reason", "actor", "created_at"]
        read_only_fields = fields


class RetryInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=150)


class HandledByInputSerializer(serializers.Serializer):
    """``PATCH calls/{id}/``: who answered the call (an active member's user id, or null)."""

    handled_by = serializers.IntegerField(allow_null=True)

    def validate_handled_by(self, value: int | None) -> Any:
        if value is None:
            return None
        user = active_member(self.context["request"].company, value)
        if user is None:
            raise serializers.ValidationError("Not an active member of this company.")
        return user


class RolesInputSerializer(serializers.Serializer):
    """Either ``{"swap": true}`` or ``{"roles": {"0": "customer", "1": "agent"}}``."""

    swap = serializers.BooleanField(required=False, default=False)
    roles = serializers.DictField(
        child=serializers.ChoiceField(choices=["agent", "customer"]), required=False
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("swap") and not attrs.get("roles"):
            raise serializers.ValidationError("Give swap: true or a roles mapping.")
        return attrs


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
            "recording_purged_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "recording_purged_at": {
                "help_text": "When the company's retention window deleted the audio; "
                "null if it was never deleted."
            }
        }

    def get_has_recording(self, call: Call) -> bool:
        return bool(call.recording)

    @classmethod
    def columns(cls) -> list[str]:
        """What a row reads, for ``QuerySet.only()``: its own fields, the recording behind
        ``has_recording`` and the summaries' fields. A page of 50 then builds its rows from
        about half the columns (no password hash of the CSR, no search vector)."""
        summaries = {"contact": ContactSummarySerializer, "handled_by": UserSummarySerializer}
        own = [name for name in cls.Meta.fields if name not in {*summaries, "has_recording"}]
        related = [
            f"{name}__{field}" for name, summary in summaries.items() for field in summary().fields
        ]
        return [*own, "recording", *related]


# Fields of the call detail that apps above calls add (analysis: ``analysis``), filled in
# their ``ready()``; calls never imports them. Each getter takes the call (and the request).
DETAIL_EXTRAS: dict[str, Callable[[Call, Any], Any]] = {}


def register_detail_field(name: str, getter: Callable[[Call, Any], Any]) -> None:
    DETAIL_EXTRAS[name] = getter


class CallDetailSerializer(CallSerializer):
    recording = serializers.SerializerMethodField()
    transcript = serializers.SerializerMethodField()
    stage_history = StageChangeSerializer(source="stage_changes", many=True, read_only=True)

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
            "transcript",
            "stage_history",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Call) -> dict[str, Any]:
        data = super().to_representation(instance)
        for name, getter in DETAIL_EXTRAS.items():
            data[name] = getter(instance, self.context.get("request"))
        return data

    @extend_schema_field(TranscriptSerializer(allow_null=True))
    def get_transcript(self, call: Call) -> dict[str, Any] | None:
        transcript = Transcript.objects.filter(call=call).select_related("roles_corrected_by")
        found = transcript.first()
        return TranscriptSerializer(found).data if found else None

    @extend_schema_field(RecordingSerializer(allow_null=True))
    def get_recording(self, call: Call) -> dict[str, Any] | None:
        return RecordingSerializer(call).data if call.recording else None
