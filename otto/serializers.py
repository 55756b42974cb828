"""API shapes for the tenant core (DESIGN.md §5 minimum field names).

Input serializers parse and normalise; the services decide. Secrets are write-only and
only their presence is ever read back.
"""

from __future__ import annotations

import datetime
import zoneinfo
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from otto.models import Analyzer, AuditEvent, Company, Contact, Role, Transcriber
from otto.services import check_phone
from otto.timeline import Cursor

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PhoneField(serializers.CharField):
    """Any common format in (read in ``DEFAULT_PHONE_REGION``), E.164 out."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value == "" and self.allow_blank:
            return ""
        try:
            return check_phone(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


# A wall-clock time of day in the company's zone: "HH:MM" (seconds optional on input). Not
# OpenAPI's `format: time`, which is RFC 3339's full-time and requires a UTC offset.
CLOCK_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
CLOCK_TIME_SCHEMA = {"type": "string", "pattern": CLOCK_TIME_PATTERN, "example": "08:00"}


@extend_schema_field(CLOCK_TIME_SCHEMA)
class ClockTimeField(serializers.TimeField):
    """``"HH:MM"`` out; ``"HH:MM"`` or ``"HH:MM:SS"`` in."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("format", "%H:%M")
        kwargs.setdefault("input_formats", ["%H:%M", "%H:%M:%S"])
        super().__init__(**kwargs)


@extend_schema_field(
    {"type": "string", "enum": sorted(zoneinfo.available_timezones()), "example": "America/Denver"}
)
class TimeZoneField(serializers.CharField):
    """An IANA time zone name (checked by the serializer against the same database)."""


class MeUserSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()


class MeCompanySerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.IntegerField()
    name = serializers.CharField()


class MeSerializer(serializers.Serializer[dict[str, Any]]):
    user = MeUserSerializer()
    company = MeCompanySerializer()
    role = serializers.ChoiceField(choices=Role.choices)


@extend_schema_field(
    {
        "type": "object",
        "description": "Opening hours per weekday in the company's time zone: [open, close] "
        "with open first, or [] for closed. Days left out keep their hours.",
        "properties": {
            day: {
                "type": "array",
                "items": CLOCK_TIME_SCHEMA,
                "oneOf": [{"maxItems": 0}, {"minItems": 2, "maxItems": 2}],
            }
            for day in WEEKDAYS
        },
        "additionalProperties": False,
        "example": {"mon": ["08:00", "18:00"], "sun": []},
    }
)
class BusinessHoursField(serializers.DictField):
    child = serializers.ListField(child=ClockTimeField(), max_length=2)


class CompanySerializer(serializers.ModelSerializer[Company]):
    tracking_numbers = serializers.ListField(child=PhoneField(), max_length=100, required=False)
    twilio_number = PhoneField(allow_blank=True, required=False)
    # CallRailCompany rows; numeric legacy ids come in as numbers too.
    callrail_company_ids = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=100, required=False
    )
    callrail_api_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, allow_null=True, max_length=500
    )
    callrail_signing_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, allow_null=True, max_length=500
    )
    callrail_api_key_set = serializers.SerializerMethodField()
    callrail_signing_key_set = serializers.SerializerMethodField()
    transcriber = serializers.ChoiceField(
        choices=Transcriber.choices,
        required=False,
        allow_blank=True,
        help_text="Blank: the deployment's default (TRANSCRIBER).",
    )
    analyzer = serializers.ChoiceField(
        choices=Analyzer.choices,
        required=False,
        allow_blank=True,
        help_text="Blank: the deployment's default (ANALYZER).",
    )
    timezone = TimeZoneField(max_length=64, required=False)
    quiet_hours_start = ClockTimeField(required=False)
    quiet_hours_end = ClockTimeField(required=False)
    business_hours = BusinessHoursField(required=False)
    recovery_nudge_hours = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=24 * 14),
        max_length=10,
        required=False,
    )

    class Meta:
        model = Company
        fields = [
            "id",
            "name",
            "slug",
            "timezone",
            "callrail_account_id",
            "callrail_company_ids",
            "tracking_numbers",
            "twilio_number",
            "quiet_hours_start",
            "quiet_hours_end",
            "sms_help_reply",
            "business_hours",
            "transcriber",
            "analyzer",
            "recovery_enabled",
            "recovery_nudge_hours",
            "recovery_escalate_hours",
            "followup_enabled",
            "followup_auto_send",
            "followup_text",
            "retention_recordings_days",
            "retention_transcripts_days",
            "retention_webhook_bodies_days",
            "retention_messages_days",
            "callrail_api_key",
            "callrail_signing_key",
            "callrail_api_key_set",
            "callrail_signing_key_set",
        ]
        read_only_fields = ["id", "slug"]

    def get_callrail_api_key_set(self, company: Company) -> bool:
        return bool(company.callrail_api_key)

    def get_callrail_signing_key_set(self, company: Company) -> bool:
        return bool(company.callrail_signing_key)

    def to_representation(self, company: Company) -> dict[str, Any]:
        data = super().to_representation(company)
        data["tracking_numbers"] = self.context["tracking_numbers"]
        data["callrail_company_ids"] = self.context["callrail_company_ids"]
        return data

    def validate_timezone(self, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise serializers.ValidationError(f"{value!r} is not an IANA time zone.") from None
        return value

    def validate_tracking_numbers(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("A number is listed twice.")
        return value

    def validate_business_hours(
        self, value: dict[str, list[datetime.time]]
    ) -> dict[str, list[str]]:
        hours: dict[str, list[str]] = {}
        for day, span in value.items():
            if day not in WEEKDAYS:
                raise serializers.ValidationError(f"Days are {', '.join(WEEKDAYS)}; not {day!r}.")
            if span and (len(span) != 2 or span[0] >= span[1]):
                raise serializers.ValidationError(f"{day}: give [open, close] with open first.")
            hours[day] = [t.strftime("%H:%M") for t in span]
        return hours

    def validate_recovery_nudge_hours(self, value: list[int]) -> list[int]:
        if value != sorted(set(value)):
            raise serializers.ValidationError("Give increasing hours, each once.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        nudges = attrs.get(
            "recovery_nudge_hours", self.instance and self.instance.recovery_nudge_hours
        )
        escalate = attrs.get(
            "recovery_escalate_hours", self.instance and self.instance.recovery_escalate_hours
        )
        if nudges and escalate is not None and escalate <= max(nudges):
            raise serializers.ValidationError(
                {"recovery_escalate_hours": "Escalate after the last nudge."}
            )
        return attrs


class ContactSerializer(serializers.ModelSerializer[Contact]):
    phone = PhoneField()

    class Meta:
        model = Contact
        fields = [
            "id",
            "phone",
            "name",
            "email",
            "address",
            "city",
            "state",
            "postal_code",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # The (company, phone) constraint is enforced by the service (409, not 400).
        validators: list[object] = []


class CursorField(serializers.CharField):
    # A field may convert what it reads; the stubs pin CharField's internal value to str.
    def to_internal_value(self, data: Any) -> Cursor:  # type: ignore[override]
        try:
            return Cursor.decode(super().to_internal_value(data))
        except ValueError:
            raise serializers.ValidationError("This is not a cursor from this list.") from None


class TimelineQuerySerializer(serializers.Serializer[dict[str, Any]]):
    cursor = CursorField(required=False, help_text="The `next` link's cursor.")
    page_size = serializers.IntegerField(required=False, default=50, min_value=1, max_value=200)


class TimelineItemSerializer(serializers.Serializer[dict[str, Any]]):
    type = serializers.CharField(
        help_text='What happened: "call", "lead_status", "appointment", "task", "message" '
        '(an SMS), "consent" (an opt-out, opt-in or HELP) or "ai_call" (an AI follow-up call '
        "that ended); each app registers its own "
        "kind. `data` is that item's own shape."
    )
    at = serializers.DateTimeField()
    # DRF allows a field named ``data``; the stubs see only the Serializer.data property.
    data = serializers.DictField()  # type: ignore[assignment]


class TimelinePageSerializer(serializers.Serializer[dict[str, Any]]):
    next = serializers.URLField(allow_null=True)
    results = TimelineItemSerializer(many=True)


class AuditActorSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = AuditActorSerializer(
        allow_null=True, read_only=True, help_text="Null: the system or a provider event."
    )
    actor_label = serializers.CharField(
        read_only=True, help_text="Who acted, as read at the time (an email, or e.g. 'system')."
    )
    details = serializers.JSONField(
        read_only=True, help_text="Field names, counts and ids; never a secret or a number."
    )

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "action",
            "actor",
            "actor_label",
            "target_type",
            "target_id",
            "details",
            "ip_address",
            "user_agent",
            "created_at",
        ]
        read_only_fields = fields
