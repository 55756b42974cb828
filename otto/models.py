import datetime
from collections.abc import Iterable
from typing import Any, Protocol, cast

from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from otto.crypto import EncryptedSecretField
from otto.queues import Queue
from otto.sql import TenantTrigramIndex


class _Timestamped(Protocol):
    updated_at: datetime.datetime


class TimestampedQuerySet[M: models.Model](models.QuerySet[M]):
    """A queryset whose writes advance ``updated_at``, for every model that has one.

    ``auto_now`` only acts in ``Model.save()``, but most writes here are compare-and-set
    ``QuerySet.update()`` calls, so without this a client syncing on ``updated_at`` would
    miss them. A caller that sets ``updated_at`` itself (or includes it in
    ``bulk_update``'s fields) keeps its value.
    """

    def update(self, **kwargs: Any) -> int:
        # An empty update writes nothing, and must not start writing a timestamp.
        if kwargs:
            kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)

    # Django's marker (templates never call it); mypy cannot declare a function attribute.
    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_update(
        self, objs: Iterable[M], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        objs = list(objs)
        fields = list(fields)
        if fields and "updated_at" not in fields:
            now = timezone.now()
            for obj in objs:
                # Every model on this queryset has ``updated_at``; M's bound cannot say so.
                cast(_Timestamped, obj).updated_at = now
            fields.append("updated_at")
        return super().bulk_update(objs, fields, batch_size=batch_size)

    bulk_update.alters_data = True  # type: ignore[attr-defined]  # as update above


# use_in_migrations stays False: the manager changes no schema, so the autodetector and the
# historical models in migrations never see it.
TimestampedManager = models.Manager.from_queryset(TimestampedQuerySet)


def default_business_hours() -> dict[str, list[str]]:
    weekday = ["08:00", "18:00"]
    return {day: weekday for day in ("mon", "tue", "wed", "thu", "fri")} | {
        "sat": ["09:00", "13:00"]
    }


def default_recovery_nudges() -> list[int]:
    return [2, 10, 24]


class User(AbstractUser):
    """A person who signs in: Clerk users through the API, staff through the admin."""

    clerk_user_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    name = models.CharField(max_length=200, blank=True)


class Transcriber(models.TextChoices):
    DEEPGRAM = "deepgram", "Deepgram"
    SHUNYA = "shunya", "Shunya"


class Analyzer(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    SHUNYA = "shunya", "Shunya"


# Ten years: a longer window is a typo, not a policy (docs/retention.md).
RETENTION_MAX_DAYS = 3650


def retention_days(what: str) -> "models.PositiveIntegerField[int | None, int | None]":
    """A retention window in days on Company; blank keeps ``what`` forever."""
    return models.PositiveIntegerField(
        f"days to keep {what}",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(RETENTION_MAX_DAYS)],
        help_text=f"Older {what} are purged daily (docs/retention.md). Blank: kept forever.",
    )


class Company(models.Model):
    """A tenant: one home-services business and everything it owns."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    clerk_org_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    timezone = models.CharField(max_length=64, default="America/New_York")
    quiet_hours_start = models.TimeField(default=datetime.time(8, 0))
    quiet_hours_end = models.TimeField(default=datetime.time(21, 0))
    business_hours = models.JSONField(default=default_business_hours, blank=True)
    # Blank: the deployment's TRANSCRIBER setting.
    transcriber = models.CharField(
        max_length=16, choices=Transcriber.choices, blank=True, default=""
    )
    # Blank: the deployment's ANALYZER setting.
    analyzer = models.CharField(max_length=16, choices=Analyzer.choices, blank=True, default="")
    analysis_monthly_budget_usd = models.DecimalField(
        "monthly analysis budget (USD)",
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="LLM spend per calendar month before calls wait. "
        "Blank: the deployment's ANALYSIS_MONTHLY_BUDGET_USD.",
    )
    # Missed-call recovery: text back at once, nudge after these hours, escalate after that.
    recovery_enabled = models.BooleanField(default=True)
    recovery_nudge_hours = models.JSONField(default=default_recovery_nudges, blank=True)
    recovery_escalate_hours = models.PositiveSmallIntegerField(default=48)
    # Blank: messaging.recovery's defaults, naming the company and how to opt out.
    recovery_text = models.CharField("text-back", max_length=320, blank=True)
    recovery_nudge_text = models.CharField(max_length=320, blank=True)
    # Numbers (E.164) never texted back: known spammers, the tenant's own lines.
    recovery_block_list = models.JSONField(default=list, blank=True)
    # A booked appointment for the contact this many days after the missed call makes
    # its recovery ``recovered`` (messaging.recovery; the recovery KPI counts the same).
    recovery_window_days = models.PositiveSmallIntegerField(default=7)
    # AI follow-up calls (Bland, messaging.voice): the disclosure every call opens with,
    # and the version of it that consent is recorded against. No script: no AI calls.
    ai_call_disclosure_script = models.TextField(blank=True)
    ai_call_disclosure_version = models.CharField(max_length=64, blank=True)
    # Follow-ups as AI calls instead of texts, for numbers with an ai_voice opt-in.
    followup_ai_calls = models.BooleanField("follow up by AI call", default=False)
    # Follow-ups of qualified, unbooked calls (messaging.followups, docs/recovery.md).
    followup_enabled = models.BooleanField(default=True)
    # Send follow-ups without a person approving each one.
    followup_auto_send = models.BooleanField(default=False)
    # The template when the analysis suggests no text; blank: messaging.followups' default.
    # Placeholders: {name}, {company}, {objection}.
    followup_text = models.CharField("follow-up template", max_length=320, blank=True)
    callrail_account_id = models.CharField(max_length=64, blank=True)
    # The CallRail company ids are CallRailCompany rows: a JSON list cannot be unique
    # across tenants, and two tenants claiming one id let one read the other's calls.
    callrail_api_key = EncryptedSecretField(null=True, blank=True)
    callrail_signing_key = EncryptedSecretField(null=True, blank=True)
    twilio_number = models.CharField(max_length=20, blank=True)
    # The answer to an inbound HELP (messaging); blank: a default naming the company and
    # how to opt out.
    sms_help_reply = models.CharField(max_length=320, blank=True)
    # Retention windows (otto.retention); blank keeps the data forever.
    retention_recordings_days = retention_days("recordings")
    retention_transcripts_days = retention_days("transcripts")
    retention_webhook_bodies_days = retention_days("webhook bodies")
    retention_messages_days = retention_days("message bodies")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CallRailCompany(models.Model):
    """A CallRail company (``COM…``, or a legacy numeric id) and the one tenant it belongs to."""

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="callrail_companies"
    )
    callrail_company_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "CallRail company"
        verbose_name_plural = "CallRail companies"
        ordering = ["callrail_company_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["callrail_company_id"], name="otto_callrail_company_id_uniq"
            )
        ]

    def __str__(self) -> str:
        return self.callrail_company_id


class PhoneNumber(models.Model):
    """A tracking or sending number. Unique across tenants: webhooks resolve tenants by it."""

    class Kind(models.TextChoices):
        TRACKING = "tracking", "CallRail tracking number"
        SENDING = "sending", "Twilio sending number"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="phone_numbers")
    number = models.CharField(max_length=20, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        indexes = [models.Index(fields=["company", "kind"], name="otto_phone_company_kind_idx")]

    def __str__(self) -> str:
        return self.number


class Role(models.TextChoices):
    MANAGER = "manager", "Manager"
    CSR = "csr", "CSR"
    SALES_REP = "sales_rep", "Sales rep"


class Membership(models.Model):
    """A user's role in a company. A revoked one is kept, so a still-valid token is refused."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    clerk_membership_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "company"], name="otto_membership_user_company_uniq"
            )
        ]
        indexes = [
            models.Index(
                fields=["company", "role"],
                name="otto_membership_active_idx",
                condition=Q(revoked_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.company} ({self.role})"


class Contact(models.Model):
    """A customer of a company, known by phone number (E.164, unique per company)."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="contacts")
    phone = models.CharField(max_length=20)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    address = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=50, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "phone"], name="otto_contact_company_phone_uniq"
            )
        ]
        indexes = [
            models.Index(fields=["company", "-created_at"], name="otto_contact_created_idx"),
            models.Index(fields=["company", "name"], name="otto_contact_name_idx"),
            # ?search= by name on contacts, leads, appointments and tasks (otto.selectors).
            TenantTrigramIndex("name", name="otto_contact_name_trgm"),
        ]

    def __str__(self) -> str:
        return self.name or self.phone


class IdempotencyKey(models.Model):
    """The stored outcome of a POST sent with an ``Idempotency-Key``, per company."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "key"], name="otto_idempotency_company_key_uniq"
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="otto_idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"


class QueueHeartbeat(models.Model):
    """When a worker last ran the heartbeat task of a queue, and where."""

    queue = models.CharField(max_length=32, primary_key=True, choices=[(q, q) for q in Queue])
    cluster = models.CharField(max_length=40)
    beat_at = models.DateTimeField()
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()

    class Meta:
        ordering = ["queue"]

    def __str__(self) -> str:
        return f"{self.queue} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class RetentionRun(models.Model):
    """One retention purge of one tenant: what it removed, per kind, and what went wrong."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="retention_runs")
    started_at = models.DateTimeField()
    # Null while it runs, or when its worker died mid-run (the next run carries on).
    finished_at = models.DateTimeField(null=True, blank=True)
    # {"recordings": 3, "recording_files": 3, "transcripts": 5, ...}: rows purged per kind.
    counts = models.JSONField(default=dict, blank=True)
    # ["recordings: could not delete 4/recordings/9.mp3 from storage: ...", ...]
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["company", "-started_at"], name="otto_retention_run_company_idx")
        ]

    def __str__(self) -> str:
        return f"retention run of {self.company_id} at {self.started_at:%Y-%m-%d %H:%M}"


class PendingFileDeletion(models.Model):
    """A file in storage that no row points at any more, kept here until storage confirms
    its deletion: a failed delete is retried by the next retention run, never forgotten."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    # The registered purge that let go of it ("recordings").
    kind = models.CharField(max_length=32)
    name = models.CharField(max_length=255, unique=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["company", "id"], name="otto_pending_file_company_idx")]

    def __str__(self) -> str:
        return self.name


class AuditAction(models.TextChoices):
    """What an audit event records. Stored as the value; add, never rename."""

    RECORDING_PLAYED = "recording.played", "Recording played"
    CONTACT_EXPORTED = "contact.exported", "Contact exported"
    CONTACT_ERASED = "contact.erased", "Contact erased"
    MEMBERSHIP_CREATED = "membership.created", "Membership created"
    MEMBERSHIP_ROLE_CHANGED = "membership.role_changed", "Membership role changed"
    MEMBERSHIP_REVOKED = "membership.revoked", "Membership revoked"
    MEMBERSHIP_RESTORED = "membership.restored", "Membership restored"
    MEMBERSHIP_DELETED = "membership.deleted", "Membership deleted"
    # Any other field of a membership, changed by hand in the admin.
    MEMBERSHIP_CHANGED = "membership.changed", "Membership changed"
    COMPANY_SETTINGS_CHANGED = "company.settings_changed", "Company settings changed"
    COMPANY_SECRET_CHANGED = "company.secret_changed", "Company secret changed"
    CALL_RETRIED = "call.retried", "Call retried"
    CALL_REANALYZED = "call.reanalyzed", "Call re-analysed"
    CALL_OUTCOMES_REAPPLIED = "call.outcomes_reapplied", "Call outcomes re-applied"
    WEBHOOK_REPLAYED = "webhook.replayed", "Webhook replayed"


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """Reads only: the log is evidence, so bulk writes that would rewrite it are refused."""

    def update(self, **kwargs: Any) -> int:
        raise ValueError("audit events are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ValueError("audit events are append-only")

    update.alters_data = True  # type: ignore[attr-defined]  # as TimestampedQuerySet
    delete.alters_data = True  # type: ignore[attr-defined]  # as above


class AuditEvent(models.Model):
    """One audited action: who did what to which row, from where (append-only).

    Written only through :func:`otto.audit.record`. ``details`` holds field names and
    counts, never a secret's value nor a phone number in clear (an erased number is kept
    as its keyed hash, :func:`otto.erasure.phone_hash`).
    """

    # PROTECT: a tenant is deactivated, never deleted while its audit trail exists.
    company = models.ForeignKey(
        Company, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Who, as read when it happened (the email, or "system"/"clerk"): kept if the user goes.
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = models.Manager.from_queryset(AuditEventQuerySet)()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["company", "-created_at"], name="otto_audit_company_idx"),
            models.Index(fields=["action", "-created_at"], name="otto_audit_action_idx"),
            models.Index(
                fields=["company", "target_type", "target_id"], name="otto_audit_target_idx"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.action} by {self.actor_label or 'system'} at {self.created_at:%Y-%m-%d %H:%M}"
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Evidence: an event is written once and never edited.
        if self.pk is not None:
            raise ValueError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("audit events are append-only")
