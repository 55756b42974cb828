"""Outcomes of a call (DESIGN §9.3): the contact's lead and its history, appointments,
tasks, and the key signals a manager should see. The ``applied`` stage writes them from a
call's current analysis; people change them through the API and the admin."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from otto.models import Company, Contact, TimestampedManager


class Lead(models.Model):
    """A contact's sales opportunity. A contact has at most one active lead; a closed lead
    (won or lost) is kept, and the contact's next call opens a new one."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        WARM = "warm", "Warm"
        HOT = "hot", "Hot"
        QUALIFIED_BOOKED = "qualified_booked", "Qualified, booked"
        QUALIFIED_UNBOOKED = "qualified_unbooked", "Qualified, not booked"
        QUALIFIED_SERVICE_NOT_OFFERED = (
            "qualified_service_not_offered",
            "Qualified, service not offered",
        )
        NURTURING = "nurturing", "Nurturing"
        DORMANT = "dormant", "Dormant"
        ABANDONED = "abandoned", "Abandoned"
        CLOSED_WON = "closed_won", "Closed, won"
        CLOSED_LOST = "closed_lost", "Closed, lost"

    CLOSED = frozenset({Status.CLOSED_WON, Status.CLOSED_LOST})

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="leads")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="leads")
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.NEW)
    # Where the lead came from: CallRail's source name of its first call, or "manual".
    source = models.CharField(max_length=200, blank=True)
    assigned_rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_leads",
    )
    score = models.PositiveSmallIntegerField(null=True, blank=True)  # 0–100
    last_contacted_at = models.DateTimeField(null=True, blank=True)
    # False once closed: the partial unique constraint allows one active lead per contact.
    is_active = models.BooleanField(default=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    deal_size = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact"],
                condition=Q(is_active=True),
                name="appointments_lead_one_active_per_contact",
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__lte=100), name="appointments_lead_score"
            ),
            models.CheckConstraint(
                condition=Q(deal_size__isnull=True) | Q(deal_size__gte=0),
                name="appointments_lead_deal_size_positive",
            ),
        ]
        indexes = [
            models.Index(fields=["company", "-created_at", "-id"], name="appt_lead_created_idx"),
            models.Index(fields=["company", "status"], name="appt_lead_status_idx"),
            models.Index(
                fields=["assigned_rep", "-created_at"],
                name="appt_lead_rep_idx",
                condition=Q(assigned_rep__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"lead {self.pk} ({self.status})"


class LeadStatusChange(models.Model):
    """One move of a lead's status: who (null for the pipeline), why, and the call behind it."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="history")
    # Blank for the row that created the lead.
    from_status = models.CharField(max_length=32, choices=Lead.Status.choices, blank=True)
    to_status = models.CharField(max_length=32, choices=Lead.Status.choices)
    reason = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    call = models.ForeignKey(
        "calls.Call", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The analysis version whose outcomes made this change (null for people).
    analysis_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["lead", "-created_at", "-id"], name="appt_lead_history_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"


class GeocodedAddress(models.Model):
    """Google's answer for one normalised address of a tenant, so a second appointment at
    the same address costs no request. A failed or ambiguous answer is kept with its reason
    (and retried after a while by the geocoder)."""

    class Status(models.TextChoices):
        OK = "ok", "Found"
        AMBIGUOUS = "ambiguous", "Ambiguous"
        NOT_FOUND = "not_found", "Not found"
        FAILED = "failed", "Provider failed"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    normalized = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=Status.choices)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    formatted_address = models.CharField(max_length=300, blank=True)
    error = models.CharField(max_length=255, blank=True)
    # A failed lookup is retried (retry-geocodes) a bounded number of times with backoff.
    attempts = models.PositiveSmallIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "normalized"], name="appointments_geocode_address_uniq"
            )
        ]
        indexes = [
            models.Index(
                fields=["retry_at"],
                name="appt_geocode_retry_idx",
                condition=Q(status="failed"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.normalized} ({self.status})"


class Appointment(models.Model):
    """A visit on a rep's schedule: made once per booked call, or by a person."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        CONFIRMED = "confirmed", "Confirmed"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        NO_SHOW = "no_show", "No-show"

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    class GeocodeStatus(models.TextChoices):
        PENDING = "pending", "Not geocoded yet"
        OK = "ok", "Geocoded"
        AMBIGUOUS = "ambiguous", "Ambiguous address"
        NOT_FOUND = "not_found", "Address not found"
        FAILED = "failed", "Geocoding failed"
        NO_ADDRESS = "no_address", "No address"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="appointments")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="appointments")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="appointments")
    # The booked call it was made from; unique, so redelivery and re-analysis make one.
    call = models.ForeignKey(
        "calls.Call", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    scheduled_start = models.DateTimeField()
    scheduled_end = models.DateTimeField()
    address = models.CharField(max_length=300, blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    geocode_status = models.CharField(
        max_length=16, choices=GeocodeStatus.choices, default=GeocodeStatus.PENDING
    )
    geocode_error = models.CharField(max_length=255, blank=True)
    service_type = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    deal_size = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    assigned_rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="appointments",
    )
    notes = models.TextField(blank=True)
    # The analysis version it was last written from (null when a person made it).
    analysis_version = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["call"],
                condition=Q(call__isnull=False),
                name="appointments_appointment_one_per_call",
            ),
            models.CheckConstraint(
                condition=Q(scheduled_end__gt=F("scheduled_start")),
                name="appointments_appointment_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(deal_size__isnull=True) | Q(deal_size__gte=0),
                name="appointments_appointment_deal_size_positive",
            ),
        ]
        indexes = [
            models.Index(
                fields=["company", "scheduled_start", "id"], name="appt_company_start_idx"
            ),
            # The double-booking check and a rep's schedule.
            models.Index(
                fields=["assigned_rep", "scheduled_start"],
                name="appt_rep_start_idx",
                condition=Q(assigned_rep__isnull=False),
            ),
            models.Index(fields=["lead", "-scheduled_start"], name="appt_lead_start_idx"),
            models.Index(fields=["contact", "-scheduled_start"], name="appt_contact_start_idx"),
        ]

    def __str__(self) -> str:
        return f"appointment {self.pk} at {self.scheduled_start:%Y-%m-%d %H:%M}"


class Task(models.Model):
    """Something a person must do: made from an analysis' pending actions, by recovery,
    from a key signal, or by hand."""

    class Type(models.TextChoices):
        CALL_BACK = "call_back", "Call back"
        FOLLOW_UP_CALL = "follow_up_call", "Follow-up call"
        CHECK_IN = "check_in", "Check in"
        SEND_QUOTE = "send_quote", "Send quote"
        SEND_ESTIMATE = "send_estimate", "Send estimate"
        SEND_CONTRACT = "send_contract", "Send contract"
        SEND_INFO = "send_info", "Send info"
        SEND_PHOTOS = "send_photos", "Send photos"
        SEND_DETAILS = "send_details", "Send details"
        SCHEDULE_APPOINTMENT = "schedule_appointment", "Schedule appointment"
        SCHEDULE_VISIT = "schedule_visit", "Schedule visit"
        RESCHEDULE = "reschedule", "Reschedule"
        CONFIRM_APPOINTMENT = "confirm_appointment", "Confirm appointment"
        SITE_VISIT = "site_visit", "Site visit"
        INSPECTION = "inspection", "Inspection"
        MEASUREMENT = "measurement", "Measurement"
        VERIFY_INSURANCE = "verify_insurance", "Verify insurance"
        VERIFY_DETAILS = "verify_details", "Verify details"
        CHECK_AVAILABILITY = "check_availability", "Check availability"
        CONFIRM_ADDRESS = "confirm_address", "Confirm address"
        PREPARE_CONTRACT = "prepare_contract", "Prepare contract"
        COLLECT_DOCUMENTS = "collect_documents", "Collect documents"
        SEND_INVOICE = "send_invoice", "Send invoice"
        ESCALATE = "escalate", "Escalate"
        MANAGER_REVIEW = "manager_review", "Manager review"
        GET_APPROVAL = "get_approval", "Get approval"
        SETUP_FINANCING = "setup_financing", "Set up financing"
        PROCESS_PAYMENT = "process_payment", "Process payment"
        SEND_PAYMENT_LINK = "send_payment_link", "Send payment link"
        CUSTOM = "custom", "Custom"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    class Source(models.TextChoices):
        AI = "ai", "From the call's analysis"
        MANUAL = "manual", "Manual"
        RECOVERY = "recovery", "Missed-call recovery"
        SIGNAL = "signal", "Key signal"
        AI_CALL = "ai_call", "AI follow-up call"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="tasks")
    type = models.CharField(max_length=32, choices=Type.choices)
    description = models.TextField(blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    lead = models.ForeignKey(
        Lead, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    call = models.ForeignKey(
        "calls.Call", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    # With (call, type): one task per pending action of a call, whatever the redeliveries
    # and re-analyses. Blank for manual tasks.
    dedupe_key = models.CharField(max_length=100, blank=True)
    analysis_version = models.PositiveIntegerField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["call", "type", "dedupe_key"],
                condition=Q(call__isnull=False) & ~Q(dedupe_key=""),
                name="appointments_task_call_type_dedupe_uniq",
            ),
        ]
        indexes = [
            models.Index(
                fields=["company", "status", "due_at", "id"], name="appt_task_company_due_idx"
            ),
            # tasks/ lists newest first (appointments.views.NewestFirst): without it a
            # tenant's page of 50 sorted all its tasks (130 ms at 100,000; docs/performance.md).
            models.Index(fields=["company", "-created_at", "-id"], name="appt_task_created_idx"),
            models.Index(
                fields=["assignee", "status", "due_at"],
                name="appt_task_assignee_idx",
                condition=Q(assignee__isnull=False),
            ),
            models.Index(fields=["contact", "-created_at"], name="appt_task_contact_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} ({self.status})"


class KeySignal(models.Model):
    """Something about a call a manager should know at once (one per call and type)."""

    class Type(models.TextChoices):
        URGENT = "urgent", "Urgent or emergency"
        MANY_OBJECTIONS = "many_objections", "Three or more objections"
        SERVICE_NOT_OFFERED = "service_not_offered", "Service not offered"
        NEGATIVE_SENTIMENT = "negative_sentiment", "Strongly negative sentiment"
        COMPETITOR_MENTIONED = "competitor_mentioned", "Competitor mentioned"

    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="key_signals")
    type = models.CharField(max_length=32, choices=Type.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    call = models.ForeignKey("calls.Call", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    detail = models.TextField(blank=True)
    analysis_version = models.PositiveIntegerField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["call", "type"], name="appointments_signal_call_type")
        ]
        indexes = [
            models.Index(fields=["company", "-created_at", "-id"], name="appt_signal_created_idx"),
            models.Index(
                fields=["company", "-created_at"],
                name="appt_signal_unacked_idx",
                condition=Q(acknowledged_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} on call {self.call_id}"
