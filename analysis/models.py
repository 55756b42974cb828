"""Call analyses: one row per run of an analyzer over a call's redacted transcript."""

from __future__ import annotations

from django.db import models

from analysis.effective import effective, effective_bool, effective_text
from calls.models import Call
from otto.models import Analyzer, Company, TimestampedManager


class CallAnalysis(models.Model):
    """One analyzer run over one call (DESIGN.md §9.2); ``is_current`` marks the one in use.

    Versions are never overwritten: a re-analysis adds ``version`` n + 1 and moves
    ``is_current`` to it in the same transaction. ``overrides`` are people's corrections
    ({field: value}); they are copied onto every later version and win wherever a field is
    read (:func:`analysis.selectors.effective_fields`).
    """

    class Urgency(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        EMERGENCY = "emergency", "Emergency"

    class LeadQuality(models.TextChoices):
        HOT = "hot", "Hot"
        WARM = "warm", "Warm"
        COLD = "cold", "Cold"
        UNQUALIFIED = "unqualified", "Unqualified"

    class BookingStatus(models.TextChoices):
        BOOKED = "booked", "Booked"
        NOT_BOOKED = "not_booked", "Not booked"
        SERVICE_NOT_OFFERED = "service_not_offered", "Service not offered"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="call_analyses")
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="analyses")
    version = models.PositiveIntegerField()
    is_current = models.BooleanField(default=True)

    analyzer = models.CharField(max_length=16, choices=Analyzer.choices)
    model = models.CharField(max_length=100, blank=True)
    prompt_version = models.CharField(max_length=32)
    # The provider's id of the request, for support tickets.
    request_id = models.CharField(max_length=100, blank=True)

    summary = models.TextField(blank=True)
    sentiment = models.FloatField(null=True, blank=True)  # -1.0 … 1.0
    intent = models.CharField(max_length=100, blank=True)
    urgency = models.CharField(max_length=16, choices=Urgency.choices, default=Urgency.NORMAL)
    qualified = models.BooleanField(default=False)
    lead_quality = models.CharField(max_length=16, choices=LeadQuality.choices)
    booking_status = models.CharField(max_length=24, choices=BookingStatus.choices)
    # [{category, quote, utterance, resolved}]
    objections = models.JSONField(default=list, blank=True)
    # {start, end, address, service_type} (ISO 8601 with the tenant's offset) or null
    appointment = models.JSONField(null=True, blank=True)
    customer_name = models.CharField(max_length=200, blank=True)
    service_address = models.CharField(max_length=300, blank=True)
    # [{type, description, due, utterance}]
    pending_actions = models.JSONField(default=list, blank=True)
    coaching_tips = models.JSONField(default=list, blank=True)
    # The text message the analyzer suggests for a qualified call that did not book; what
    # messaging's follow-up drafts (docs/recovery.md). Blank when it suggests none.
    followup_text = models.TextField(blank=True)
    # {score 0-100, completed [...], missed [...]}
    sop = models.JSONField(default=dict, blank=True)
    # {field: [utterance index, ...]}; every index exists in the transcript analysed
    citations = models.JSONField(default=dict, blank=True)
    overrides = models.JSONField(default=dict, blank=True)
    # The effective values the KPIs count and the calls list filters on (analysis.effective:
    # the override first), computed by the database on every write, so no write path can
    # leave them stale, and with statistics of their own: the planner could not estimate
    # the COALESCE over the JSON (docs/performance.md).
    effective_booking_status = models.GeneratedField(
        expression=effective_text("booking_status"),
        output_field=models.CharField(max_length=24, choices=BookingStatus.choices),
        db_persist=True,
    )
    effective_qualified = models.GeneratedField(
        expression=effective_bool("qualified"),
        output_field=models.BooleanField(null=True),
        db_persist=True,
    )
    effective_objections = models.GeneratedField(
        expression=effective("objections"), output_field=models.JSONField(), db_persist=True
    )
    # The transcript was longer than the prompt's limit and sent as head and tail.
    transcript_truncated = models.BooleanField(default=False)
    # Set when the transcript's retention window blanked the objections' verbatim quotes
    # (analysis.retention); the rest of the analysis is the tenant's record and stays.
    quotes_purged_at = models.DateTimeField(null=True, blank=True)

    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=10, decimal_places=6, default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        verbose_name_plural = "call analyses"
        constraints = [
            models.UniqueConstraint(fields=["call", "version"], name="analysis_call_version_uniq"),
            # Two workers finishing at once (a redelivered task, a worker the reaper
            # presumed dead) can never both leave a current analysis.
            models.UniqueConstraint(
                fields=["call"],
                condition=models.Q(is_current=True),
                name="analysis_one_current_per_call",
            ),
        ]
        indexes = [
            # The tenant's analyses by date: KPIs, monthly spend.
            models.Index(fields=["company", "-created_at"], name="analysis_company_created_idx"),
            models.Index(
                fields=["company", "booking_status"],
                condition=models.Q(is_current=True),
                name="analysis_company_booking_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"analysis v{self.version} of call {self.call_id}"


class AnalysisFailure(models.Model):
    """An analyzer answer that was paid for and not stored: a refusal (its text in
    ``error``), output off the schema, citations of utterances that do not exist. Its
    tokens and cost count toward the company's monthly budget like an analysis'."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="analysis_failures")
    analyzer = models.CharField(max_length=16, choices=Analyzer.choices)
    model = models.CharField(max_length=100, blank=True)
    error = models.TextField()
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The month's spend, beside the analyses'.
            models.Index(fields=["company", "-created_at"], name="analysis_failure_company_idx"),
        ]

    def __str__(self) -> str:
        return f"failed analysis of call {self.call_id}"


class Reanalysis(models.Model):
    """One ``manage.py reanalyze`` pass over a company's calls in a date range, kept so an
    interrupted pass resumes: a call whose current analysis was made since ``started_at``
    is done. A finished pass is kept as the record of what was run."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    since = models.DateField()
    until = models.DateField()
    # --prompt-version: only calls whose current analysis has another prompt version.
    prompt_version = models.CharField(max_length=32, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TimestampedManager()

    class Meta:
        verbose_name_plural = "reanalyses"
        constraints = [
            # One open pass per range: a second run of the same command resumes it.
            models.UniqueConstraint(
                fields=["company", "since", "until", "prompt_version"],
                condition=models.Q(finished_at__isnull=True),
                name="analysis_reanalysis_open_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"reanalysis {self.since}…{self.until}"


class KpiDay(models.Model):
    """One tenant's call figures for one local day and one person: the KPIs' daily rollup
    (docs/kpis.md#the-daily-rollup), written only by :mod:`analysis.rollup`.

    ``handler`` rows partition the day's calls by ``handled_by`` (``person`` 0: nobody), so
    the tenant's figures are their sum and a CSR's are their rows. ``rep`` rows hold each
    sales rep's calls (their active leads' contacts' calls and the calls their appointments
    were booked on, :func:`appointments.selectors.rep_calls`): a call counts once for each
    of its reps, and a call without one in none. ``person`` is a plain id, not a foreign
    key: a deleted user's calls are re-attributed by the database without a save, and the
    tenant's sums must not move. Every figure is what :func:`analysis.kpis.overview` counts
    from the raw tables over the same calls; ``objection_calls`` is ``{category: calls}``.
    """

    class Kind(models.TextChoices):
        HANDLER = "handler", "Handled by"
        REP = "rep", "Sales rep"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    person = models.PositiveBigIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    answered = models.PositiveIntegerField(default=0)
    missed = models.PositiveIntegerField(default=0)
    analysed = models.PositiveIntegerField(default=0)
    qualified = models.PositiveIntegerField(default=0)
    booked = models.PositiveIntegerField(default=0)
    service_not_offered = models.PositiveIntegerField(default=0)
    qualified_unbooked = models.PositiveIntegerField(default=0)
    # Objections raised on qualified calls (the overview's per-qualified-call average).
    objections = models.PositiveIntegerField(default=0)
    # Calls with at least one objection (top objections' share).
    any_objection = models.PositiveIntegerField(default=0)
    objection_calls = models.JSONField(default=dict)
    sop_sum = models.FloatField(default=0)
    sop_count = models.PositiveIntegerField(default=0)
    # Recovery's figures (messaging's conditions): calls whose missed-call recovery texted,
    # was replied to, was recovered by a booking; and the seconds to each texted one's
    # first text, sorted (a median does not add up over days; the values do).
    texted = models.PositiveIntegerField(default=0)
    replied = models.PositiveIntegerField(default=0)
    recovered = models.PositiveIntegerField(default=0)
    response_seconds = models.JSONField(default=list)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "day", "kind", "person"], name="analysis_kpiday_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"KPIs of company {self.company_id} on {self.day} ({self.kind} {self.person})"


class KpiDirtyDay(models.Model):
    """A call changed and its tenant's day in :class:`KpiDay` is not recomputed yet.

    Inserted in the transaction of the change (:func:`analysis.rollup.mark`) and deleted
    when the day is recomputed. Only ever inserted, never updated, and with no unique key:
    a mark never waits for another transaction's, so marking cannot deadlock the pipeline,
    and an open transaction's marks are invisible to a recompute's delete until it commits.
    Plain ids: a call or company deleted in the same transaction must not make the mark
    fail it."""

    tenant = models.BigIntegerField()
    day = models.DateField()
    call = models.BigIntegerField()
    marked_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["tenant", "day"], name="analysis_kpidirty_day_idx")]

    def __str__(self) -> str:
        return f"company {self.tenant}, {self.day}: call {self.call} changed"


class KpiRollup(models.Model):
    """Whether a tenant's :class:`KpiDay` rows can be read: built (``built_at``) under the
    company settings they depend on as they are now (``basis``: its time zone, recovery's
    window; :func:`analysis.rollup.basis`). Until then its KPIs come from the raw tables."""

    company = models.OneToOneField(
        Company, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    basis = models.JSONField(default=dict)
    built_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"KPI rollup of company {self.company_id}"
