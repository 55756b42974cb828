from django.db import models

from otto.models import Company, TimestampedManager


class Provider(models.TextChoices):
    CALLRAIL = "callrail", "CallRail"
    TWILIO = "twilio", "Twilio"
    CLERK = "clerk", "Clerk"
    SHUNYA = "shunya", "Shunya"
    BLAND = "bland", "Bland"


class WebhookEvent(models.Model):
    """One webhook delivery as received, stored before it is acknowledged (the inbox)."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        # Claimed by a worker (compare-and-set from RECEIVED); see integrations.services.
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        DUPLICATE = "duplicate", "Duplicate"
        UNMATCHED = "unmatched", "Unmatched tenant"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Ignored"

    provider = models.CharField(max_length=16, choices=Provider.choices)
    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, null=True, blank=True, related_name="webhook_events"
    )
    dedupe_key = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When a worker last claimed it: a PROCESSING event older than the deadline lost its
    # worker (Redis delivery is at-most-once) and is re-queued by the reaper.
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # When a push of its processing task last failed (the broker was down). Set only on
    # failure, so the happy path writes nothing more; the reaper enqueues such an event on
    # its next run rather than after RECEIVED_GRACE, and clears it.
    enqueue_failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "dedupe_key"], name="intg_webhook_provider_dedupe_uniq"
            )
        ]
        indexes = [
            models.Index(fields=["status", "received_at"], name="intg_webhook_status_idx"),
            models.Index(
                fields=["received_at"],
                name="intg_webhook_unqueued_idx",
                condition=models.Q(enqueue_failed_at__isnull=False),
            ),
            models.Index(fields=["company", "-received_at"], name="intg_webhook_company_idx"),
            models.Index(fields=["provider", "-received_at"], name="intg_webhook_provider_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type or '?'} {self.dedupe_key}"


class ClerkObjectVersion(models.Model):
    """The newest Clerk state applied to one Clerk object, so an older event never wins.

    Svix retries and replays deliver events out of order; each handler locks this row and
    applies an event only when its timestamp is not older than the one recorded here.
    """

    clerk_id = models.CharField(max_length=64, primary_key=True)
    # Clerk's own clock, in epoch milliseconds (data.updated_at, else the envelope timestamp).
    version = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimestampedManager()

    def __str__(self) -> str:
        return f"{self.clerk_id} @ {self.version}"
