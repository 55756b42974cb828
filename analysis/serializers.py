"""API shapes for analyses (DESIGN.md §9.2 field names). What is read is the analysis with
people's overrides applied; the model's own values stay in the stored row."""

from __future__ import annotations

import datetime
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
    followup_text = serializers.CharField(
        max_length=320, allow_blank=True, allow_null=True, required=False
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


# --- the KPIs (metrics/…) --------------------------------------------------------------------

MAX_KPI_DAYS = 366
DEFAULT_SPAN = datetime.timedelta(days=29)


class KpiParamsSerializer(serializers.Serializer):
    """``date_from``/``date_to``: dates in the company's time zone, both included (default:
    the last 30 days to today). ``rep`` or ``csr``: a manager's view of one person."""

    date_from = serializers.DateField(required=False, input_formats=["%Y-%m-%d"])
    date_to = serializers.DateField(required=False, input_formats=["%Y-%m-%d"])
    rep = serializers.IntegerField(required=False, min_value=1)
    csr = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "rep" in attrs and "csr" in attrs:
            raise serializers.ValidationError({"csr": ["Name a rep or a CSR, not both."]})
        # One end alone fixes the other 29 days away; neither: the 30 days to today.
        date_from, date_to = attrs.get("date_from"), attrs.get("date_to")
        if date_to is None:
            date_to = date_from + DEFAULT_SPAN if date_from else self.context["today"]
        if date_from is None:
            date_from = date_to - DEFAULT_SPAN
        if date_from > date_to:
            raise serializers.ValidationError({"date_from": ["Must not be after date_to."]})
        if (date_to - date_from).days >= MAX_KPI_DAYS:
            raise serializers.ValidationError(
                {"date_from": [f"The range may span at most {MAX_KPI_DAYS} days."]}
            )
        return {**attrs, "date_from": date_from, "date_to": date_to}


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.CharField()


class OverviewSerializer(serializers.Serializer):
    calls = serializers.IntegerField()
    answered = serializers.IntegerField()
    missed = serializers.IntegerField()
    qualified = serializers.IntegerField()
    qualified_rate = serializers.FloatField(allow_null=True)
    booked = serializers.IntegerField()
    booking_rate = serializers.FloatField(allow_null=True)
    service_not_offered = serializers.IntegerField()
    qualified_unbooked = serializers.IntegerField()
    avg_objections_per_qualified_call = serializers.FloatField(allow_null=True)
    avg_sop_score = serializers.FloatField(allow_null=True)
    open_tasks = serializers.IntegerField(allow_null=True)
    overdue_tasks = serializers.IntegerField(allow_null=True)
    recovery_rate = serializers.FloatField(allow_null=True)


class TrendDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    calls = serializers.IntegerField()
    qualified = serializers.IntegerField()
    booked = serializers.IntegerField()
    booking_rate = serializers.FloatField(allow_null=True)


class ObjectionShareSerializer(serializers.Serializer):
    category = serializers.CharField()
    calls = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)


class RepRowSerializer(serializers.Serializer):
    user = PersonSerializer()
    calls = serializers.IntegerField()
    qualified = serializers.IntegerField()
    booked = serializers.IntegerField()
    booking_rate = serializers.FloatField(allow_null=True)
    appointments = serializers.IntegerField()
    won = serializers.IntegerField()
    close_rate = serializers.FloatField(allow_null=True)
    avg_sop_score = serializers.FloatField(allow_null=True)


class RecoverySerializer(serializers.Serializer):
    missed_calls = serializers.IntegerField(allow_null=True)
    texted = serializers.IntegerField(allow_null=True)
    replied = serializers.IntegerField(allow_null=True)
    recovered = serializers.IntegerField(allow_null=True)
    recovery_rate = serializers.FloatField(allow_null=True)
    median_first_response_seconds = serializers.FloatField(allow_null=True)
    unavailable_reason = serializers.CharField(allow_null=True)


class RangeSerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()


class OverviewResultSerializer(RangeSerializer, OverviewSerializer):
    pass


class RecoveryResultSerializer(RangeSerializer, RecoverySerializer):
    pass


class TrendResultsSerializer(RangeSerializer):
    results = TrendDaySerializer(many=True)


class ObjectionResultsSerializer(RangeSerializer):
    results = ObjectionShareSerializer(many=True)


class RepResultsSerializer(RangeSerializer):
    results = RepRowSerializer(many=True)
