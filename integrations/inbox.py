"""The webhook inbox: the one receive path every provider's webhook view goes through.

Store, acknowledge, process (STYLE.md). :func:`receive`:

1. asks the provider's :class:`Source` to check the delivery. The check verifies the
   signature before anything is written, and answers with an :class:`Incoming` (what to
   store) or raises :class:`SignatureInvalid` (401, nothing stored);
2. stores it with one ``INSERT … ON CONFLICT (provider, dedupe_key) DO NOTHING RETURNING
   id``: the unique constraint, not a prior SELECT, decides what is a duplicate, so two
   concurrent deliveries of one event store one row;
3. enqueues processing on commit (``otto.queues.enqueue``) and answers 200 at once.

A duplicate is acknowledged and not processed again. Processing and replay live in
:mod:`integrations.services`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from django.conf import settings
from django.db import connections, router
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django_ratelimit.core import get_usage

from integrations.models import Provider, WebhookEvent
from otto.errors import error_body
from otto.metrics import counter
from otto.models import Company
from otto.throttling import RATE_LIMIT_ERRORS

logger = logging.getLogger(__name__)

Status = WebhookEvent.Status

WEBHOOKS = counter("otto_webhooks_total", "Webhook deliveries by provider and outcome.")

# Where each provider's Source lives; imported lazily because the provider modules import
# the services that import this module.
SOURCE_MODULES: dict[str, str] = {
    Provider.CLERK: "integrations.clerk.webhooks",
    Provider.CALLRAIL: "integrations.callrail.webhooks",
    Provider.SHUNYA: "integrations.shunya.webhooks",
}


class SignatureInvalid(Exception):
    """The delivery is not signed by the provider (or by the tenant it claims to be)."""


@dataclasses.dataclass(frozen=True)
class Incoming:
    """What a provider's check hands the inbox: the row to store, already verified."""

    event_type: str
    dedupe_key: str
    status: str = Status.RECEIVED
    company: Company | None = None
    last_error: str = ""
    # False when no key could check the signature (an unknown tenant's delivery): see
    # :func:`receive_unverified`.
    verified: bool = True


@dataclasses.dataclass(frozen=True)
class HandlerResult:
    """What a handler reports. ``company`` attaches the event to its tenant once known
    (never moves it to another); ``status`` UNMATCHED defers it until a replay."""

    status: str = Status.PROCESSED
    company: Company | None = None
    note: str = ""


Handler = Callable[[WebhookEvent], HandlerResult | None]


class Check(Protocol):
    def __call__(
        self, body: bytes, headers: Mapping[str, str], route_event_type: str, *, replay: bool
    ) -> Incoming: ...


@dataclasses.dataclass(frozen=True)
class Source:
    """One provider's side of the inbox."""

    provider: str
    # Request headers kept with the event (lower-case), signature headers included so a
    # replay can verify the stored delivery again.
    headers: tuple[str, ...]
    # Verifies and classifies a delivery. ``replay`` re-checks a stored one: the signature
    # must still match, but a freshness window (svix's ±5 min) cannot apply.
    check: Check
    handlers: Mapping[str, Handler]
    # False while nothing consumes the provider's events yet: they are stored and stay
    # RECEIVED for that consumer.
    processes: bool = True


def source_for(provider: str) -> Source:
    try:
        module = importlib.import_module(SOURCE_MODULES[provider])
    except KeyError:
        raise LookupError(f"no webhook source for provider {provider!r}") from None
    return module.SOURCE


def body_key(body: bytes) -> str:
    """The dedupe key of a delivery whose own ids cannot be trusted or read."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def unparseable(event_type: str, body: bytes, reason: str, company: Company | None = None):
    return Incoming(
        event_type=event_type,
        dedupe_key=body_key(body),
        status=Status.FAILED,
        company=company,
        last_error=reason,
    )


def kept_headers(headers: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    return {name: lowered[name] for name in names if name in lowered}


def decode_body(body: bytes) -> str:
    # Stored as text; a body that is not UTF-8 is kept readable (and fails parsing) rather
    # than dropped. JSON webhooks are UTF-8, so replays re-encode the exact signed bytes.
    return body.decode("utf-8", errors="replace")


def store_event(
    provider: str, incoming: Incoming, headers: dict[str, str], body: bytes
) -> tuple[int, bool]:
    """Insert the event unless ``(provider, dedupe_key)`` exists: ``(id, created)``.

    One statement, so it is race-free without a transaction, and it works on PostgreSQL
    and SQLite (3.35+) alike. Django's ``bulk_create(ignore_conflicts=True)`` cannot tell
    whether the row was inserted, hence ``RETURNING``.
    """
    values: dict[str, Any] = {
        "provider": provider,
        "company": incoming.company.pk if incoming.company else None,
        "dedupe_key": incoming.dedupe_key[:255],
        "event_type": incoming.event_type[:100],
        "received_at": timezone.now(),
        "headers": headers,
        "body": decode_body(body) if incoming.verified else capped_body(body),
        "status": incoming.status,
        "attempts": 0,
        "last_error": incoming.last_error,
        "processed_at": None,
    }
    connection = connections[router.db_for_write(WebhookEvent)]
    opts = WebhookEvent._meta
    fields = [opts.get_field(name) for name in values]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({columns}) "  # noqa: S608 -- identifiers only
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote('provider')}, {quote('dedupe_key')}) DO NOTHING "
        f"RETURNING {quote(opts.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is not None:
        return row[0], True
    existing = WebhookEvent.objects.using(connection.alias).only("pk")
    return existing.get(provider=provider, dedupe_key=values["dedupe_key"]).pk, False


def receive(request: HttpRequest, source: Source, route_event_type: str = "") -> JsonResponse:
    """Verify, store, enqueue, acknowledge. Used by every provider's webhook view."""
    from integrations.tasks import process_webhook_event  # tasks → services → this module
    from otto.queues import Queue, enqueue

    body = request.body
    headers = kept_headers(request.headers, source.headers)
    try:
        incoming = source.check(body, headers, route_event_type, replay=False)
    except SignatureInvalid as exc:
        WEBHOOKS.inc(provider=source.provider, outcome="bad_signature")
        logger.warning("%s webhook refused: %s", source.provider, exc)
        return refused()
    if not incoming.verified:
        return receive_unverified(request, source, incoming, headers)

    event_id, created = store_event(source.provider, incoming, headers, body)
    if not created:
        WEBHOOKS.inc(provider=source.provider, outcome="duplicate")
        return JsonResponse({"status": "duplicate", "id": event_id})
    WEBHOOKS.inc(provider=source.provider, outcome=incoming.status)
    if incoming.status == Status.RECEIVED and source.processes:
        enqueue(Queue.DEFAULT, process_webhook_event, event_id)
    elif incoming.status != Status.RECEIVED:
        logger.warning(
            "%s webhook %s stored as %s: %s",
            source.provider,
            event_id,
            incoming.status,
            incoming.last_error,
        )
    return JsonResponse({"status": incoming.status, "id": event_id})


# --- deliveries no key can verify ------------------------------------------------------

REFUSED_MESSAGE = "The webhook signature could not be verified."
# A stored body that starts with this is not the delivery: only its size and hash are kept.
TRUNCATED_MARKER = "otto:body-not-stored"


def refused() -> JsonResponse:
    """The one answer to a delivery that is not verified, whatever the reason: a bad
    signature for a known tenant and an unknown tenant look alike from outside, so nobody
    can probe which CallRail companies are customers. The log and the event say why."""
    return JsonResponse(error_body("invalid_signature", REFUSED_MESSAGE), status=401)


def receive_unverified(
    request: HttpRequest, source: Source, incoming: Incoming, headers: dict[str, str]
) -> JsonResponse:
    """Store an unverifiable delivery for ops (``unmatched``), answered as refused.

    Anyone can send one, so each source IP may send ``WEBHOOK_UNVERIFIED_RATE`` (over it:
    429 with Retry-After, nothing stored), a body over ``WEBHOOK_UNVERIFIED_MAX_BYTES`` is
    kept as its size and SHA-256 only, and such events are purged after
    ``WEBHOOK_UNVERIFIED_RETENTION_DAYS`` (:func:`integrations.services.purge_events`).
    """
    wait = unverified_wait(request)
    if wait is not None:
        WEBHOOKS.inc(provider=source.provider, outcome="rate_limited")
        response = JsonResponse(
            error_body(
                "throttled",
                "Too many unverified deliveries from this address.",
                {"retry_after_seconds": wait},
            ),
            status=429,
        )
        response["Retry-After"] = str(wait)
        return response
    event_id, created = store_event(source.provider, incoming, headers, request.body)
    WEBHOOKS.inc(provider=source.provider, outcome=incoming.status if created else "duplicate")
    logger.warning(
        "%s webhook %s stored as %s, answered 401: %s",
        source.provider,
        event_id,
        incoming.status,
        incoming.last_error,
    )
    return refused()


def capped_body(body: bytes) -> str:
    limit = settings.WEBHOOK_UNVERIFIED_MAX_BYTES
    if len(body) <= limit:
        return decode_body(body)
    return f"{TRUNCATED_MARKER} size={len(body)} sha256={hashlib.sha256(body).hexdigest()}"


def is_truncated(event: WebhookEvent) -> bool:
    return event.body.startswith(TRUNCATED_MARKER)


def unverified_wait(request: HttpRequest) -> int | None:
    """Seconds until this source IP may send an unverified delivery again; None if now.
    Fails open, like the API's throttles (otto/throttling.py), when the cache is down."""
    if not settings.ENABLE_RATE_LIMITING:
        return None
    try:
        usage = get_usage(
            request,
            group="webhook-unverified",
            key="ip",
            rate=settings.WEBHOOK_UNVERIFIED_RATE,
            method=get_usage.ALL,
            increment=True,
        )
    except Exception as exc:  # the cache client's errors vary by backend
        RATE_LIMIT_ERRORS.inc(scope="webhook-unverified")
        logger.warning("unverified webhook rate not checked, delivery stored: %r", exc)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    return max(int(usage["time_left"]), 1)
