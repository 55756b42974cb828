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

from django.db import connections, router
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from integrations.models import Provider, WebhookEvent
from otto.errors import error_body
from otto.metrics import counter
from otto.models import Company

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
        "body": decode_body(body),
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
        return JsonResponse(error_body("invalid_signature", str(exc)), status=401)

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
