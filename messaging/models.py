"""SMS threads and messages, and the consent ledger every outbound message is gated by."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeBoundary, RangeOperators
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.utils import timezone

from otto.models import Company, Contact, TimestampedManager


class Thread(models.Model):
    """The SMS conversation between a company and one contact."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="sms_threads")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="sms_threads")
    # The contact's number (E.164) when the thread started: the number texts go to.
    phone = models.CharField(max_length=20)
    # Never null: the list is ordered (and cursor-paginated) by it.
    last_message_at = models.DateTimeField(default=timezone.now)
    last_message_preview = models.CharField(max_length=160, blank=True)
    # Inbound messages since someone last read the thread.
    unread = models.PositiveIntegerField(default=0)
    # The quiet-hours exception: a manual reply within 24 h of the contact's last text.
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "contact"], name="messaging_thread_company_contact_uniq"
            )
        ]
        indexes = [
            models.Index(
                fields=["company", "-last_message_at", "-id"],
                name="messaging_thread_activity_idx",
            ),
            models.Index(fields=["company", "phone"], name="messaging_thread_phone_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.phone} ({self.company_id})"


class Message(models.Model):
    """One SMS or MMS, inbound or outbound, with where its delivery stands."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        # Deferred by the gate to the recipient's next allowed minute (scheduled_for).
        SCHEDULED = "scheduled", "Scheduled"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        UNDELIVERED = "undelivered", "Undelivered"
        FAILED = "failed", "Failed"
        # Refused by the gate (status_reason says why); never sent.
        BLOCKED = "blocked", "Blocked"

    class Kind(models.TextChoices):
        MANUAL = "manual", "Manual"
        RECOVERY = "recovery", "Missed-call recovery"
        FOLLOWUP = "followup", "Follow-up"
        AUTO_REPLY = "auto_reply", "Auto-reply"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="sms_messages")
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    status_reason = models.CharField(max_length=255, blank=True)
    from_number = models.CharField(max_length=20)
    to_number = models.CharField(max_length=20)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, blank=True)
    # An auto-reply's inbound message (HELP, a free-text opt-out): one reply per message,
    # so a redelivered or replayed webhook never answers twice.
    reply_to = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # The missed-call recovery a ``recovery`` message is a step of: its send re-checks
    # the recovery's stop conditions (messaging.recovery).
    recovery = models.ForeignKey(
        "MissedCallRecovery",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
    )
    error_code = models.CharField(max_length=16, blank=True)
    media = models.JSONField(default=list, blank=True)
    twilio_sid = models.CharField(max_length=64, null=True, blank=True, unique=True)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Written before Twilio is called: a retry after a killed worker looks for what Twilio
    # accepted since this claim instead of sending again (messaging.sending).
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # queryset.update() writes updated_at too (otto.models.TimestampedQuerySet).
    objects = TimestampedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reply_to"], name="messaging_msg_one_reply_uniq")
        ]
        indexes = [
            models.Index(fields=["thread", "created_at", "id"], name="messaging_msg_thread_idx"),
            # The retention purge: the tenant's texts older than its window.
            models.Index(fields=["company", "created_at"], name="messaging_msg_company_idx"),
            models.Index(
                fields=["status", "next_attempt_at"],
                name="messaging_msg_due_idx",
                condition=models.Q(status__in=["queued", "scheduled", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.status} {self.to_number}"


class ConsentEvent(models.Model):
    """One opt-out, opt-in or HELP of a phone number: the append-only consent ledger."""

    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        AI_VOICE = "ai_voice", "AI voice calls"

    class Action(models.TextChoices):
        OPT_OUT = "opt_out", "Opt out"
        OPT_IN = "opt_in", "Opt in"
        HELP = "help", "Help"

    class Source(models.TextChoices):
        KEYWORD = "keyword", "Keyword"
        FREE_TEXT = "free_text", "Free-text revocation"
        CARRIER_ERROR = "carrier_error", "Carrier error"
        API = "api", "API"
        ADMIN = "admin", "Admin"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="consent_events")
    phone = models.CharField(max_length=20)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    action = models.CharField(max_length=16, choices=Action.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="consent_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=255, blank=True)
    # The proof of a consent a person gave outside a text (an ai_voice opt-in): which
    # disclosure they agreed to, how (e.g. "verbal, call CA… at 02:13", "web form #42")
    # and when they gave it, which may precede the record.
    disclosure_version = models.CharField(max_length=64, blank=True)
    evidence = models.CharField(max_length=500, blank=True)
    obtained_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["company", "phone", "channel", "-created_at", "-id"],
                name="messaging_consent_phone_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.phone} {self.channel} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The ledger is evidence: an event is written once and never edited.
        if self.pk is not None:
            raise ValueError("consent events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("consent events are append-only")


class TsTzRange(models.Func):
    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class PostgresExclusionConstraint(ExclusionConstraint):
    """An exclusion constraint on PostgreSQL, and nothing on the embedded SQLite default of
    ``make run``, which has no ``EXCLUDE``: there the rule it states is not enforced by the
    database (docs/recovery.md)."""

    def constraint_sql(self, model: Any, schema_editor: Any) -> Any:
        if schema_editor.connection.vendor != "postgresql":
            return None
        return super().constraint_sql(model, schema_editor)

    def create_sql(self, model: Any, schema_editor: Any) -> Any:
        if schema_editor.connection.vendor != "postgresql":
            return None
        return super().create_sql(model, schema_editor)

    def remove_sql(self, model: Any, schema_editor: Any) -> Any:
        if schema_editor.connection.vendor != "postgresql":
            return None
        return super().remove_sql(model, schema_editor)

    def validate(
        self, model: Any, instance: Any, exclude: Any = None, using: str = DEFAULT_DB_ALIAS
    ) -> None:
        if connections[using].vendor == "postgresql":
            super().validate(model, instance, exclude=exclude, using=using)


class MissedCallRecovery(models.Model):
    """The text-back, nudges and escalation that follow one missed call (docs/recovery.md).

    One per contact per 24 hours: an exclusion constraint forbids two recoveries of one
    contact whose ``[started_at, cooldown_until)`` ranges overlap, whatever their status,
    so two missed calls in ten minutes make one recovery (and one text), and a boundary
    such as midnight changes nothing. ``cooldown_until`` is stored, not computed in the
    index: ``timestamptz + interval`` is not immutable in PostgreSQL."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REPLIED = "replied", "Replied"
        RECOVERED = "recovered", "Recovered"
        ESCALATED = "escalated", "Escalated to a CSR task"
        STOPPED = "stopped", "Stopped"
        COMPLETED = "completed", "Completed"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="recoveries")
    call = models.ForeignKey("calls.Call", on_delete=models.CASCADE, related_name="recoveries")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="recoveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # Steps done: 0 the text-back, 1… the nudges, then the escalation (messaging.recovery).
    step = models.PositiveSmallIntegerField(default=0)
    # When the next step is due; null once the recovery has ended.
    next_action_at = models.DateTimeField(null=True, blank=True)
    stopped_reason = models.CharField(max_length=255, blank=True)
    # The last step's claim (its compare-and-set on ``step``).
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The missed call's time; the cadence counts from it.
    started_at = models.DateTimeField()
    cooldown_until = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        verbose_name = "missed-call recovery"
        verbose_name_plural = "missed-call recoveries"
        constraints = [
            models.UniqueConstraint(fields=["call"], name="messaging_recovery_call_uniq"),
            PostgresExclusionConstraint(
                name="messaging_recovery_one_per_day_excl",
                expressions=[
                    ("contact", RangeOperators.EQUAL),
                    (
                        TsTzRange("started_at", "cooldown_until", RangeBoundary()),
                        RangeOperators.OVERLAPS,
                    ),
                ],
            ),
            models.CheckConstraint(
                condition=models.Q(cooldown_until__gt=models.F("started_at")),
                name="messaging_recovery_cooldown_after_start",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_action_at"],
                name="messaging_recovery_due_idx",
                condition=models.Q(status="active"),
            ),
            models.Index(
                fields=["company", "-created_at", "-id"], name="messaging_recovery_list_idx"
            ),
            models.Index(fields=["contact", "status"], name="messaging_recovery_contact_idx"),
        ]

    def __str__(self) -> str:
        return f"recovery of call {self.call_id} ({self.status})"


class FollowUp(models.Model):
    """The follow-up of a qualified call that did not book (messaging.followups).

    One per call and channel: a re-analysis or a re-applied outcome never drafts a second.
    """

    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        AI_CALL = "ai_call", "AI call"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        APPROVED = "approved", "Approved"
        # Approved (or auto-sent) and waiting for scheduled_for.
        SCHEDULED = "scheduled", "Scheduled"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"
        # Refused by the gate (status_reason says why); never sent.
        BLOCKED = "blocked", "Blocked"

    class DraftedBy(models.TextChoices):
        ANALYZER = "analyzer", "Analyzer"
        TEMPLATE = "template", "Template"
        PERSON = "person", "Person"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="followups")
    call = models.ForeignKey("calls.Call", on_delete=models.CASCADE, related_name="followups")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="followups")
    # The number (E.164) the follow-up goes to.
    phone = models.CharField(max_length=20)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    body = models.TextField(blank=True)
    drafted_by = models.CharField(max_length=16, choices=DraftedBy.choices)
    # When it goes out: the next business-hours window after the call (or the gate's
    # next allowed minute once it deferred it).
    scheduled_for = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # The SMS it was sent as (through messaging.services.send_message).
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="followups"
    )
    # Why it was cancelled, blocked or failed.
    status_reason = models.CharField(max_length=255, blank=True)
    # The send's claim (its compare-and-set on ``status``).
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        verbose_name = "follow-up"
        constraints = [
            models.UniqueConstraint(
                fields=["call", "channel"], name="messaging_followup_call_channel_uniq"
            )
        ]
        indexes = [
            # The due-row pick: approved or scheduled, scheduled_for reached.
            models.Index(
                fields=["scheduled_for"],
                name="messaging_followup_due_idx",
                condition=models.Q(status__in=["approved", "scheduled"]),
            ),
            # The list, newest first, and its filters.
            models.Index(
                fields=["company", "-created_at", "-id"], name="messaging_followup_list_idx"
            ),
            models.Index(
                fields=["company", "status", "-created_at"], name="messaging_followup_status_idx"
            ),
            # A reply or booking cancels the contact's pending follow-ups.
            models.Index(fields=["contact", "status"], name="messaging_followup_contact_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} follow-up of call {self.call_id} ({self.status})"


class AiCall(models.Model):
    """One AI follow-up call placed through Bland (messaging.voice, docs/recovery.md).

    Bland's send is not idempotent, so the row is the record that a call was asked for:
    ``placing`` is written (a compare-and-set) before Bland is called, and a call whose
    answer was lost is never sent again; its webhook finds it by the id in its metadata."""

    class Status(models.TextChoices):
        # Waiting to be placed; deferred by quiet hours when ``next_attempt_at`` is later.
        PENDING = "pending", "Pending"
        # Claimed: Bland is being (or was) asked. Never sent again from here.
        PLACING = "placing", "Placing"
        # Refused by the gate (no ai_voice consent, no disclosure script); never placed.
        BLOCKED = "blocked", "Blocked"
        PLACED = "placed", "Placed"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="ai_calls")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="ai_calls")
    phone = models.CharField(max_length=20)
    # The call this one follows up (a missed or unbooked call), when there is one.
    call = models.ForeignKey(
        "calls.Call", on_delete=models.SET_NULL, null=True, blank=True, related_name="ai_calls"
    )
    # The follow-up this call is the sending of (channel ``ai_call``), when it is one.
    followup = models.OneToOneField(
        FollowUp, on_delete=models.SET_NULL, null=True, blank=True, related_name="ai_call"
    )
    bland_call_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    status_reason = models.CharField(max_length=255, blank=True)
    # What the call opened with: the tenant's script and its version when it was placed.
    disclosure_script = models.TextField(blank=True)
    disclosure_version = models.CharField(max_length=64, blank=True)
    # The ai_voice opt-in the gate relied on (the proof: its disclosure, evidence, time).
    consent = models.ForeignKey(
        ConsentEvent, on_delete=models.PROTECT, null=True, blank=True, related_name="ai_calls"
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The outcome, from Bland's post-call webhook.
    outcome = models.CharField(max_length=32, blank=True)  # Bland's status
    answered_by = models.CharField(max_length=32, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    summary = models.TextField(blank=True)
    # Redacted before storage (calls.redaction): no card or SSN is ever written.
    transcript = models.TextField(blank=True)
    redaction_counts = models.JSONField(default=dict, blank=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        verbose_name = "AI call"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="messaging_aicall_due_idx",
                condition=models.Q(status__in=["pending", "placing"]),
            ),
            models.Index(
                fields=["company", "-created_at", "-id"], name="messaging_aicall_list_idx"
            ),
            models.Index(
                fields=["contact", "-completed_at"],
                name="messaging_aicall_contact_idx",
                condition=models.Q(completed_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"AI call to {self.phone} ({self.status})"
