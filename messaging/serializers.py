from __future__ import annotations

from rest_framework import serializers

from messaging.models import AiCall, ConsentEvent, FollowUp, Message, MissedCallRecovery, Thread
from otto.services import check_phone


class ThreadSerializer(serializers.ModelSerializer[Thread]):
    class Meta:
        model = Thread
        fields = ["id", "contact", "phone", "last_message_at", "last_message_preview", "unread"]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer[Message]):
    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "body",
            "status",
            "status_reason",
            "from_number",
            "to_number",
            "sent_by",
            "kind",
            "error_code",
            "media",
            "scheduled_for",
            "created_at",
        ]
        read_only_fields = fields


class SendInputSerializer(serializers.Serializer[None]):
    body = serializers.CharField(max_length=1600, trim_whitespace=True, allow_blank=False)


class ConsentEventSerializer(serializers.ModelSerializer[ConsentEvent]):
    class Meta:
        model = ConsentEvent
        fields = [
            "id",
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
        read_only_fields = fields


def _phone(value: str) -> str:
    from django.core.exceptions import ValidationError as DjangoValidationError

    try:
        return check_phone(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from None


class ConsentQuerySerializer(serializers.Serializer[None]):
    phone = serializers.CharField()
    channel = serializers.ChoiceField(
        choices=ConsentEvent.Channel.choices, default=ConsentEvent.Channel.SMS
    )

    def validate_phone(self, value: str) -> str:
        return _phone(value)


class ConsentInputSerializer(ConsentQuerySerializer):
    """A consent change a person records: an opt-out (any channel), or an ``ai_voice``
    opt-in with its proof (services.record_manual_consent has the rules)."""

    action = serializers.ChoiceField(
        choices=[ConsentEvent.Action.OPT_OUT, ConsentEvent.Action.OPT_IN],
        default=ConsentEvent.Action.OPT_OUT,
    )
    note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    disclosure_version = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default=""
    )
    evidence = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    obtained_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class RecoverySerializer(serializers.ModelSerializer[MissedCallRecovery]):
    class Meta:
        model = MissedCallRecovery
        fields = [
            "id",
            "call",
            "contact",
            "status",
            "step",
            "next_action_at",
            "stopped_reason",
            "started_at",
            "created_at",
        ]
        read_only_fields = fields


class AiCallSerializer(serializers.ModelSerializer[AiCall]):
    """An AI follow-up call on the contact's timeline; its transcript is the redacted one."""

    class Meta:
        model = AiCall
        fields = [
            "id",
            "call",
            "phone",
            "status",
            "status_reason",
            "outcome",
            "answered_by",
            "duration_seconds",
            "summary",
            "transcript",
            "disclosure_version",
            "consent",
            "placed_at",
            "completed_at",
            "created_at",
        ]
        read_only_fields = fields


class FollowUpSerializer(serializers.ModelSerializer[FollowUp]):
    message_status = serializers.CharField(
        source="message.status", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = FollowUp
        fields = [
            "id",
            "call",
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
            "message",
            "message_status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class FollowUpUpdateSerializer(serializers.Serializer[None]):
    """What a person changes on a draft."""

    body = serializers.CharField(max_length=1600, trim_whitespace=True, required=False)
    scheduled_for = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        if not attrs:
            raise serializers.ValidationError("Give the body or scheduled_for to change.")
        return attrs
