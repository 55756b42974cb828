"""Receiving, processing and replay of webhook events (the inbox's write side).

:func:`receive_event` is the one receive path of every webhook view (see
:mod:`integrations.inbox`): check, store, enqueue on commit.

Delivery through Redis is at-most-once and a task may also run twice, so PostgreSQL
decides who processes an event: :func:`process_event` claims it with a compare-and-set
from RECEIVED to PROCESSING and exits quietly when someone else holds it. The handler and
the final status are committed together, so a crash between them cannot mark an event
processed whose effects were lost; a handler exception rolls its writes back and leaves
the event FAILED with the error, for ops to replay. Never re-raised: a poison event must
not become a crash loop.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

# A module import: tasks.py imports this module back, and only calls into it at run time.
from integrations import tasks
from integrations.inbox import (
    HandlerResult,
    SignatureInvalid,
    Source,
    is_truncated,
    kept_headers,
    source_for,
    sources,
    store_event,
)
from integrations.models import WebhookEvent
from otto import audit
from otto.metrics import WEBHOOKS
from otto.models import AuditAction, Company
from otto.queues import Queue, enqueue
from otto.retention import Purge

logger = logging.getLogger(__name__)

Status = WebhookEvent.Status


class TenantMismatch(Exception):
    """Processing or replay resolved another tenant than the one the event belongs to."""


class ReplayRefused(Exception):
    """The event cannot be replayed now; the message says why."""


@dataclasses.dataclass(frozen=True)
class Received:
    """A delivery the inbox accepted: its event id and status (``duplicate`` when the
    event was stored before)."""

    event_id: int
    status: str


class Throttled(Exception):
    """Too many unverifiable deliveries from one source; nothing was stored."""

    def __init__(self, wait: int) -> None:
        super().__init__(f"retry after {wait} s")
        self.wait = wait


def receive_event(
    source: Source,
    body: bytes,
    headers: Mapping[str, str],
    route_event_type: str = "",
    *,
    unverified_wait: Callable[[], int | None] = lambda: None,
) -> Received:
    """Verify, store, enqueue on commit.

    Raises :class:`SignatureInvalid` when the delivery is not verified, whatever the
    reason: a bad signature (nothing stored) and a delivery no key can check (an unknown
    tenant's, stored ``unmatched`` for ops) look alike from outside, so nobody can probe
    which tenants exist. Anyone can send the latter, so ``unverified_wait`` (the seconds
    until its source may send another, or None) rate-limits them: :class:`Throttled`, and
    nothing is stored; their bodies are capped (:func:`integrations.inbox.capped_body`)
    and purged after a while (:func:`purge_events`).
    """
    kept = kept_headers(headers, source.headers)
    try:
        incoming = source.check(body, kept, route_event_type, replay=False)
    except SignatureInvalid as exc:
        WEBHOOKS.labels(provider=source.provider, outcome="bad_signature").inc()
        logger.warning("%s webhook refused: %s", source.provider, exc)
        raise
    if not incoming.verified:
        wait = unverified_wait()
        if wait is not None:
            WEBHOOKS.labels(provider=source.provider, outcome="rate_limited").inc()
            raise Throttled(wait)

    event_id, created = store_event(source.provider, incoming, kept, body)
    if not created:
        WEBHOOKS.labels(provider=source.provider, outcome="duplicate").inc()
    else:
        WEBHOOKS.labels(provider=source.provider, outcome=incoming.status).inc()
    if not incoming.verified:
        logger.warning(
            "%s webhook %s stored as %s, answered 401: %s",
            source.provider,
            event_id,
            incoming.status,
            incoming.last_error,
        )
        raise SignatureInvalid(incoming.last_error)
    if not created:
        return Received(event_id, "duplicate")
    if incoming.status == Status.RECEIVED and source.processes:
        enqueue(Queue.DEFAULT, tasks.process_webhook_event, event_id)
    elif incoming.status != Status.RECEIVED:
        logger.warning(
            "%s webhook %s stored as %s: %s",
            source.provider,
            event_id,
            incoming.status,
            incoming.last_error,
        )
    return Received(event_id, incoming.status)


def _processing_source(provider: str) -> Source | None:
    try:
        source = source_for(provider)
    except LookupError:
        # Stored while its app was installed, or by a newer release: left for that app.
        return None
    return source if source.processes else None


def process_event(event_id: int) -> str | None:
    """Run the event's handler once; the final status, or None if not ours to process."""
    event = WebhookEvent.objects.filter(pk=event_id).first()
    if event is None:
        return None
    source = _processing_source(event.provider)
    if source is None:
        return None
    claimed = WebhookEvent.objects.filter(pk=event_id, status=Status.RECEIVED).update(
        status=Status.PROCESSING,
        attempts=F("attempts") + 1,
        last_error="",
        claimed_at=timezone.now(),
    )
    if not claimed:
        logger.info("webhook event %s is not waiting to be processed; skipped", event_id)
        return None
    event.refresh_from_db()
    handler = source.handlers.get(event.event_type)
    if handler is None:
        _finish(event, Status.IGNORED, f"no handler for event type {event.event_type!r}")
        return Status.IGNORED
    try:
        with transaction.atomic():
            result = handler(event) or HandlerResult()
            company = result.company
            if company is not None and event.company_id not in (None, company.pk):
                raise TenantMismatch(
                    f"the event belongs to company {event.company_id}, "
                    f"but its handler resolved company {company.pk}"
                )
            _finish(event, result.status, result.note, company)
    except Exception as exc:
        logger.exception("webhook event %s (%s) failed", event_id, event.event_type)
        _finish(event, Status.FAILED, f"{type(exc).__name__}: {exc}")
        return Status.FAILED
    return result.status


def _finish(
    event: WebhookEvent, status: str, note: str = "", company: Company | None = None
) -> None:
    changes: dict[str, Any] = {
        "status": status,
        "last_error": note,
        "processed_at": timezone.now() if status == Status.PROCESSED else None,
    }
    if company is not None and event.company_id is None:
        changes["company"] = company
    WebhookEvent.objects.filter(pk=event.pk, status=Status.PROCESSING).update(**changes)


def requeue(events: Iterable[WebhookEvent]) -> list[int]:
    """Put events back to RECEIVED and enqueue them on commit (e.g. deferred ones whose
    prerequisite has just arrived)."""
    requeued = []
    for event in events:
        reset = WebhookEvent.objects.filter(pk=event.pk, status=event.status).exclude(
            status=Status.PROCESSING
        )
        if reset.update(status=Status.RECEIVED, last_error=""):
            enqueue(Queue.DEFAULT, tasks.process_webhook_event, event.pk)
            requeued.append(event.pk)
    return requeued


# A RECEIVED event this old lost its task in the broker; a PROCESSING one claimed this long
# ago lost its worker. Handlers are database-only and finish in well under a second. The
# grace is for events whose push succeeded: their task may still be waiting in a backlog.
# An event whose push failed (enqueue_failed_at) is known to have no task and is enqueued
# on the reaper's next run, so a broker outage delays processing by a minute, not five.
RECEIVED_GRACE = datetime.timedelta(minutes=5)
PROCESSING_DEADLINE = datetime.timedelta(minutes=10)
REAP_BATCH = 500


def mark_unqueued(event_id: int) -> None:
    """Record that the processing task of a waiting event could not be pushed."""
    WebhookEvent.objects.filter(pk=event_id, status=Status.RECEIVED).update(
        enqueue_failed_at=timezone.now()
    )


def reap_events(now: datetime.datetime | None = None) -> dict[str, int]:
    """Re-enqueue events the broker or a killed worker dropped; give up after
    ``PIPELINE_MAX_ATTEMPTS`` claims (FAILED, visible in the admin). Run every minute.
    Only the registered sources that process their events are reaped. Waiting events are
    enqueued when their push failed (at once) or when the grace is over (their task was
    lost). Enqueued twice is harmless: the task claims the event.
    """
    now = now or timezone.now()
    max_attempts = settings.PIPELINE_MAX_ATTEMPTS
    providers = [source.provider for source in sources() if source.processes]
    events = WebhookEvent.objects.filter(provider__in=providers)
    stuck = events.filter(status=Status.PROCESSING, claimed_at__lt=now - PROCESSING_DEADLINE)
    gave_up = stuck.filter(attempts__gte=max_attempts).update(
        status=Status.FAILED,
        last_error=f"gave up after {max_attempts} attempts: its worker stopped every time",
    )
    reset = stuck.update(status=Status.RECEIVED, last_error="re-queued: its worker stopped")
    waiting = events.filter(status=Status.RECEIVED).filter(
        Q(enqueue_failed_at__isnull=False) | Q(received_at__lt=now - RECEIVED_GRACE)
    )
    ids = list(waiting.order_by("received_at").values_list("pk", flat=True)[:REAP_BATCH])
    # Cleared before the pushes: a push that fails again marks its event again.
    WebhookEvent.objects.filter(pk__in=ids, enqueue_failed_at__isnull=False).update(
        enqueue_failed_at=None
    )
    for event_id in ids:
        enqueue(Queue.DEFAULT, tasks.process_webhook_event, event_id)
    return {"failed": gave_up, "reset": reset, "enqueued": len(ids)}


def replay_event(event: WebhookEvent, *, actor: Any = None) -> str:
    """Check a stored delivery again and re-run its processing; the resulting status.

    The signature is verified again where it can be (from the stored headers and body),
    the tenant is resolved again (an unmatched CallRail event matches once its tenant is
    configured), and the event never moves to another tenant: that raises
    :class:`ReplayRefused` and changes nothing but ``last_error``. A replay that goes
    through is audited (``webhook.replayed``, with ``actor``, the ops user).
    """
    if event.status == Status.PROCESSING:
        raise ReplayRefused(f"event {event.pk} is being processed right now")
    check_replayable(event)
    try:
        source = source_for(event.provider)
    except LookupError:
        raise ReplayRefused(
            f"event {event.pk}: no installed app handles {event.provider} events"
        ) from None
    try:
        incoming = source.check(event.body.encode(), event.headers, event.event_type, replay=True)
    except SignatureInvalid as exc:
        _set_error(event, f"replay refused: {exc}")
        raise ReplayRefused(f"event {event.pk}: the signature no longer verifies ({exc})") from None

    company = incoming.company
    if company is not None and event.company_id not in (None, company.pk):
        message = (
            f"replay resolved company {company.pk}, but the event belongs to company "
            f"{event.company_id}; it was not moved"
        )
        _set_error(event, message)
        raise ReplayRefused(f"event {event.pk}: {message}")

    changes: dict[str, Any] = {
        "status": incoming.status,
        "dedupe_key": incoming.dedupe_key[:255],
        "event_type": incoming.event_type[:100] or event.event_type,
        "last_error": incoming.last_error,
        "processed_at": None,
    }
    if company is not None:
        changes["company"] = company
    try:
        with transaction.atomic():
            updated = WebhookEvent.objects.filter(pk=event.pk, status=event.status).update(
                **changes
            )
    except IntegrityError:
        # Its real dedupe key is held by another delivery of the same provider event.
        original = WebhookEvent.objects.get(
            provider=event.provider, dedupe_key=incoming.dedupe_key[:255]
        )
        note = f"duplicate of event {original.pk}"
        WebhookEvent.objects.filter(pk=event.pk).update(status=Status.DUPLICATE, last_error=note)
        return Status.DUPLICATE
    if not updated:
        raise ReplayRefused(f"event {event.pk} changed while being replayed; try again")
    status = incoming.status
    if incoming.status == Status.RECEIVED and source.processes:
        status = process_event(event.pk) or Status.RECEIVED
    # After processing: the tenant it resolved to (a Clerk organization is created by it).
    replayed = WebhookEvent.objects.select_related("company").get(pk=event.pk)
    audit.record(
        AuditAction.WEBHOOK_REPLAYED,
        company=replayed.company,
        actor=actor,
        target_type="webhook_event",
        target_id=event.pk,
        changes={"provider": event.provider, "event_type": replayed.event_type, "status": status},
    )
    return status


def _set_error(event: WebhookEvent, message: str) -> None:
    WebhookEvent.objects.filter(pk=event.pk).update(last_error=message)


def check_replayable(event: WebhookEvent) -> None:
    """An unverified body too large to keep was stored as its size and hash only: there is
    nothing left to verify or process."""
    if is_truncated(event):
        message = (
            "replay refused: the body was larger than WEBHOOK_UNVERIFIED_MAX_BYTES and was "
            "not stored whole (only its size and SHA-256 were kept)"
        )
        _set_error(event, message)
        raise ReplayRefused(f"event {event.pk}: {message}")


PURGED_STATUSES = (Status.UNMATCHED, Status.FAILED)


def purge_events(now: datetime.datetime | None = None) -> int:
    """Delete ``unmatched`` and ``failed`` events older than
    ``WEBHOOK_UNVERIFIED_RETENTION_DAYS``: anyone can make unverifiable bodies, so they
    are kept only long enough for ops to look. Run daily; the count deleted."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(days=settings.WEBHOOK_UNVERIFIED_RETENTION_DAYS)
    deleted, _ = WebhookEvent.objects.filter(
        status__in=PURGED_STATUSES, received_at__lt=cutoff
    ).delete()
    if deleted:
        logger.info("purged %s unmatched or failed webhook event(s)", deleted)
    return deleted


# Settled events whose body the tenant's webhook-body window blanks (otto.retention).
SETTLED_STATUSES = (Status.PROCESSED, Status.DUPLICATE, Status.IGNORED)


def purge_webhook_bodies(purge: Purge) -> int:
    """Blank the bodies of the tenant's settled events older than its window; the row
    (provider, type, dedupe key, status, times, headers) stays as the delivery's record.
    A blanked event can no longer be replayed: its signature no longer verifies."""
    rows = WebhookEvent.objects.filter(
        company=purge.company, status__in=SETTLED_STATUSES, received_at__lt=purge.cutoff
    ).exclude(body="")
    return purge.blank(rows, body="")
