"""Calls: one row per provider call, the unit the pipeline moves through its stages."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models

from otto.models import Company, Contact, TimestampedManager


class Call(models.Model):
    """A phone call as CallRail reported it, with its recording and pipeline state.

    ``(company, source, external_id)`` is unique: every delivery, reconciliation pass and
    backfill of one provider call lands on this row. ``external_id`` is the provider's
    canonical id (CallRail's ``CAL…`` resource id, as its API returns it); the legacy
    numeric id that webhook bodies carry is kept in ``legacy_id``.
    """

    class Source(models.TextChoices):
        CALLRAIL = "callrail", "CallRail"

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"

    class Stage(models.TextChoices):
        # Stored, waiting for ingest (queue default).
        RECEIVED = "received", "Received"
        # Claimed by an ingest worker until its lease runs out (calls.stages.claim).
        INGESTING = "ingesting", "Ingesting"
        # Recording stored, waiting for transcription.
        RECORDED = "recorded", "Recorded"
        TRANSCRIBING = "transcribing", "Transcribing"
        TRANSCRIBED = "transcribed", "Transcribed"
        ANALYZING = "analyzing", "Analyzing"
        ANALYZED = "analyzed", "Analyzed"
        # Claimed by an apply worker (appointments: lead, appointment, tasks, signals).
        APPLYING = "applying", "Applying"
        APPLIED = "applied", "Applied"
        DONE = "done", "Done"
        # Terminal: nothing to process (missed, no audio, too short); stage_reason says why.
        SKIPPED = "skipped", "Skipped"
        # Terminal until ops retry it: last_error says why.
        FAILED = "failed", "Failed"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="calls")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CALLRAIL)
    external_id = models.CharField(max_length=64)
    legacy_id = models.CharField(max_length=32, blank=True)

    direction = models.CharField(max_length=16, choices=Direction.choices, blank=True)
    answered = models.BooleanField(null=True)
    voicemail = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)

    customer_number = models.CharField(max_length=20, blank=True)  # E.164
    tracking_number = models.CharField(max_length=20, blank=True)  # E.164
    customer_name = models.CharField(max_length=200, blank=True)
    customer_city = models.CharField(max_length=100, blank=True)
    customer_state = models.CharField(max_length=50, blank=True)

    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls"
    )
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="handled_calls",
    )

    # The audio in storage, at {company}/recordings/{call}.mp3 (see calls.services.recording).
    recording = models.FileField(max_length=255, blank=True)
    recording_size = models.PositiveBigIntegerField(null=True, blank=True)
    recording_sha256 = models.CharField(max_length=64, blank=True)
    recording_content_type = models.CharField(max_length=100, blank=True)
    recording_duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Set when the tenant's retention window removed the audio (calls.retention); the
    # recording facts above stay, to say what was there.
    recording_purged_at = models.DateTimeField(null=True, blank=True)

    # CallRail's attribution, as it reports it.
    source_name = models.CharField(max_length=200, blank=True)
    campaign = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True)
    lead_status = models.CharField(max_length=50, blank=True)

    # Pipeline state. Workers move it with compare-and-set on `stage`.
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.RECEIVED)
    stage_reason = models.CharField(max_length=200, blank=True)
    stage_changed_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    # Full-text search over the redacted transcript, the customer name and the CallRail
    # tags (calls.search, queue `indexing`). PostgreSQL only; NULL until first indexed.
    search_vector = SearchVectorField(null=True, blank=True, editable=False)

    # The stored deliveries that created or touched this call (admin: raw webhooks).
    webhook_events = models.ManyToManyField(
        "integrations.WebhookEvent", blank=True, related_name="calls"
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "source", "external_id"], name="calls_call_external_uniq"
            )
        ]
        indexes = [
            models.Index(fields=["company", "-started_at"], name="calls_company_started_idx"),
            # calls/?stage= newest first, and the counts per stage (its prefix): with
            # (company, stage) alone a page of `done` calls sorted 150,000 rows (775 ms).
            models.Index(
                fields=["company", "stage", "-started_at"], name="calls_company_stage_idx"
            ),
            models.Index(
                fields=["company", "answered", "-started_at"], name="calls_company_answered_idx"
            ),
            models.Index(fields=["contact", "-started_at"], name="calls_contact_started_idx"),
            # calls/?handled_by= (a CSR's calls) and the KPIs per person.
            models.Index(
                fields=["company", "handled_by", "-started_at"], name="calls_company_handled_idx"
            ),
            # Webhooks that carry only CallRail's legacy numeric id find their call by it.
            models.Index(fields=["company", "legacy_id"], name="calls_company_legacy_idx"),
            # The retry sweep: due calls in a stage, across tenants.
            models.Index(fields=["stage", "next_attempt_at"], name="calls_stage_due_idx"),
            GinIndex(fields=["search_vector"], name="calls_search_gin"),
            # The admin's pipeline page (calls.ops): calls received per hour, over rows
            # that arrive in created_at order, so a BRIN index stays tiny; and the failed
            # calls of the last day, a partial index over failed calls only.
            BrinIndex(fields=["created_at"], name="calls_created_brin"),
            models.Index(
                fields=["stage_changed_at"],
                name="calls_failed_since_idx",
                condition=models.Q(stage="failed"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.external_id}"

    @property
    def recording_path(self) -> str:
        return f"{self.company_id}/recordings/{self.pk}.mp3"


class CallBackfill(models.Model):
    """How far ``manage.py backfill_calls`` got through one CallRail company's date range,
    so an interrupted run resumes where it stopped."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    callrail_company_id = models.CharField(max_length=64)
    since = models.DateField()
    until = models.DateField()
    # The start time of the last call handled; calls are listed oldest first.
    cursor = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TimestampedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "callrail_company_id", "since", "until"],
                name="calls_backfill_range_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"{self.callrail_company_id} {self.since}…{self.until}"


class RecordingAccess(models.Model):
    """An audit record: who fetched which call's recording URL, and when."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="recording_accesses")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    accessed_at = models.DateTimeField(auto_now_add=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "recording accesses"
        indexes = [
            models.Index(fields=["call", "-accessed_at"], name="calls_recaccess_call_idx"),
            models.Index(fields=["company", "-accessed_at"], name="calls_recaccess_company_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user} → call {self.call_id} at {self.accessed_at:%Y-%m-%d %H:%M}"


class CallStageChange(models.Model):
    """One move of a call from one pipeline stage to another: the call's stage history.

    Every move goes through :func:`calls.stages.move`, which writes this row in the same
    transaction as the compare-and-set that made the move. A move made by a person (a retry
    by ops, from the API or the admin) carries its ``actor``; the pipeline's own moves
    have none. Retries are audited here, not in a table of their own.
    """

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(max_length=16, choices=Call.Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Call.Stage.choices)
    reason = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["call", "created_at"], name="calls_stagechange_call_idx"),
            # The pipeline page's median time from webhook to applied, per day.
            models.Index(
                fields=["created_at"],
                name="calls_stagechange_applied_idx",
                condition=models.Q(to_stage="applied"),
            ),
        ]

    def __str__(self) -> str:
        return f"call {self.call_id}: {self.from_stage} → {self.to_stage}"


class Transcript(models.Model):
    """The redacted transcript of one call, with its speaker roles (one per call).

    Only redacted text is ever stored: ``text`` and every utterance's ``text`` carry typed
    placeholders (``[CARD]``…) where the recognised audio held card numbers, CVVs, SSNs or
    bank account numbers; ``redaction_counts`` and ``redaction_spans`` say what was removed
    and where (seconds), never what it was.
    """

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="transcript")
    text = models.TextField(blank=True)
    # [{"speaker": 0, "role": "agent", "start": 0.6, "end": 4.1, "text": …, "confidence": …}]
    utterances = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=16, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    word_count = models.PositiveIntegerField(default=0)

    provider = models.CharField(max_length=16)
    request_id = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    audio_minutes_billed = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True
    )

    # Diarised speaker index (as a string: JSON keys) → "agent" | "customer".
    roles = models.JSONField(default=dict, blank=True)
    roles_confidence = models.FloatField(null=True, blank=True)
    roles_method = models.CharField(max_length=200, blank=True)
    roles_corrected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    roles_corrected_at = models.DateTimeField(null=True, blank=True)

    redaction_counts = models.JSONField(default=dict, blank=True)
    redaction_spans = models.JSONField(default=list, blank=True)
    # Set when the tenant's retention window blanked the text and utterances.
    purged_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    def __str__(self) -> str:
        return f"transcript of call {self.call_id}"


class ShunyaJob(models.Model):
    """One job submitted to Shunya (UWC) for a call, tracked until it completes or fails.

    ``external_id`` is Shunya's job id (unique per company). The job's result is applied
    exactly once, by whichever of the webhook and the poller gets there first: both
    compare-and-set ``status`` from ``submitted`` (calls.shunya). ``input_sha256`` is the
    hash of the audio sent, ``output_sha256`` of the result received; neither result nor
    audio is kept here.
    """

    class JobType(models.TextChoices):
        TRANSCRIPTION = "transcription", "Transcription"
        ANALYSIS = "analysis", "Analysis"

    class Status(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="shunya_jobs")
    job_type = models.CharField(max_length=16, choices=JobType.choices)
    external_id = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUBMITTED)
    # Submissions made for this job (a resubmit with its idempotency key finds it again).
    attempts = models.PositiveSmallIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    polls = models.PositiveIntegerField(default=0)
    input_sha256 = models.CharField(max_length=64, blank=True)
    output_sha256 = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    # The job this one was submitted again for, in the same attempt (an analysis whose
    # citations pointed at no utterance is asked once more, then fails the call).
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = TimestampedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "external_id"], name="calls_shunyajob_external_uniq"
            )
        ]
        indexes = [
            # The poller: submitted jobs whose next poll is due, across tenants.
            models.Index(fields=["status", "next_poll_at"], name="calls_shunyajob_poll_idx"),
            models.Index(fields=["call", "-created_at"], name="calls_shunyajob_call_idx"),
        ]

    def __str__(self) -> str:
        return f"Shunya {self.job_type} job {self.external_id}"
