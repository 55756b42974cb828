"""API shapes for analyses (DESIGN.md §9.2 field names). What is read is the analysis with
people's overrides applied; the model's own values stay in the stored row."""

from __future__ import annotations

from typing import Any, get_args

from rest_framework import serializers

from analysis import selectors
from analysis.models import CallAnalysis
from analysis.schema import ActionType, ObjectionCategory
from calls.models import Call


class ObjectionSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=list(get_args(ObjectionCategory)))
    quote = serializers.CharField(allow_blank=True)
    utterance = serializers.IntegerField(min_value=0, allow_null=True)
    resolved = serializers.BooleanField()


class AppointmentSerializer(serializers.Serializer):
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)
    address = serializers.CharField(allow_null=True, allow_blank=True)
    service_type = serializers.CharField(allow_null=True, allow_blank=True, required=False)


class PendingActionSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=list(get_args(ActionType)))
    description = serializers.CharField()
    due = serializers.CharField(allow_null=True, required=False)
    utterance = serializers.IntegerField(min_value=0, allow_null=True, required=False)


class SopSerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=0, max_value=100)
    completed = serializers.ListField(child=serializers.CharField())
    missed = serializers.ListField(child=serializers.CharField())


class CallAnalysisSerializer(serializers.ModelSerializer):
    """An analysis version as read: overrides applied, and the overrides themselves."""

    class Meta:
        model = CallAnalysis
        fields = [
            "id",
            "version",
            "is_current",
            "analyzer",
            "model",
            "prompt_version",
            "created_at",
            *selectors.FIELDS,
            "citations",
            "overrides",
            "transcript_truncated",
            "input_tokens",
            "output_tokens",
            "cost_usd",
        ]
        read_only_fields = fields

    def to_representation(self, instance: CallAnalysis) -> dict[str, Any]:
        data = super().to_representation(instance)
        for name, value in selectors.effective_fields(instance).items():
            data[name] = value
        return data


class OverridesSerializer(serializers.Serializer):
    """``PATCH calls/{id}/analysis/``: the fields to correct; null clears a correction."""

    summary = serializers.CharField(allow_null=True, required=False)
    sentiment = serializers.FloatField(min_value=-1, max_value=1, allow_null=True, required=False)
    intent = serializers.CharField(max_length=100, allow_null=True, required=False)
    urgency = serializers.ChoiceField(
        choices=CallAnalysis.Urgency.choices, allow_null=True, required=False
    )
    qualified = serializers.BooleanField(allow_null=True, required=False)
    lead_quality = serializers.ChoiceField(
        choices=CallAnalysis.LeadQuality.choices, allow_null=True, required=False
    )
    booking_status = serializers.ChoiceField(
        choices=CallAnalysis.BookingStatus.choices, allow_null=True, required=False
    )
    objections = ObjectionSerializer(many=True, allow_null=True, required=False)
    appointment = AppointmentSerializer(allow_null=True, required=False)
    customer_name = serializers.CharField(max_length=200, allow_null=True, required=False)
    service_address = serializers.CharField(max_length=300, allow_null=True, required=False)
    pending_actions = PendingActionSerializer(many=True, allow_null=True, required=False)
    coaching_tips = serializers.ListField(
        child=serializers.CharField(), allow_null=True, required=False
    )
    sop = SopSerializer(allow_null=True, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: ["This field cannot be corrected."] for name in unknown}
            )
        if not attrs:
            raise serializers.ValidationError("Name at least one field to correct.")
        return attrs

    def overrides(self) -> dict[str, Any]:
        """The validated corrections as JSON values (dates as ISO 8601 strings)."""
        return {
            name: self.fields[name].to_representation(value) if value is not None else None
            for name, value in self.validated_data.items()
        }


def call_detail_analysis(call: Call, request: Any) -> dict[str, Any] | None:
    """The call detail's ``analysis`` (calls' detail-field registry): the current one,
    overrides applied, or null."""
    current = selectors.current_analysis(call.company, call)
    return CallAnalysisSerializer(current).data if current else None
