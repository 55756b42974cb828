import datetime
from collections.abc import Iterable
from typing import Any, Protocol, cast

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone

from otto.crypto import EncryptedSecretField
from otto.queues import Queue


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
