"""The webhook inbox: what every provider's webhook goes through, and the source registry.

Store, acknowledge, process (STYLE.md). :func:`integrations.services.receive_event`:

1. asks the provider's :class:`Source` to check the delivery. The check verifies the
   signature before anything is written, and answers with an :class:`Incoming` (what to
   store) or raises :class:`SignatureInvalid` (401, nothing stored);
2. stores it with one ``INSERT … ON CONFLICT (provider, dedupe_key) DO NOTHING RETURNING
   id``: the unique constraint, not a prior SELECT, decides what is a duplicate, so two
   concurrent deliveries of one event store one row;
3. enqueues processing on commit (``otto.queues.enqueue``) and answers 200 at once.

A duplicate is acknowledged and not processed again. Receiving, processing and replay
live in :mod:`integrations.services`.

The inbox knows no provider's rules. The app that owns the rows a provider's events write
registers that provider's :class:`Source` in its ``AppConfig.ready()`` (``calls`` for
CallRail and Shunya, ``otto`` for Clerk), so the inbox never imports a handler and the
dependencies point one way (DESIGN §2).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.db.models import Field
from django.http import HttpRequest
from django.utils import timezone
from django_ratelimit.core import get_usage

from integrations.models import WebhookEvent
from otto.metrics import RATE_LIMIT_ERRORS
from otto.models import Company

logger = logging.getLogger(__name__)

Status = WebhookEvent.Status


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
    # What to store in place of the delivered body, when the delivered one must never be
    # written (Shunya's carries an unredacted transcript). None stores the body as received.
    stored_body: bytes | None = None
    # Extra headers stored with the event, e.g. the hash of a body that was replaced.
    stored_headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # False when no key could check the signature (an unknown tenant's delivery): see
    # :func:`integrations.services.receive_event`.
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
    # must still match, but a freshness window (svix's ±5 min) cannot apply. A source that
    # stores a different body than it received (``Incoming.stored_body``) cannot verify the
    # provider's signature on replay; its check verifies what it stored at receipt instead.
    check: Check
    handlers: Mapping[str, Handler]
    # False while nothing consumes the provider's events yet: they are stored and stay
    # RECEIVED for that consumer.
    processes: bool = True


_sources: dict[str, Source] = {}


def register(source: Source) -> None:
    """Make ``source`` the one that receives and processes ``source.provider``'s events.

    Called from the owning app's ``AppConfig.ready()``. Registering the same source again
    is harmless; a second, different source for one provider is a wiring mistake.
    """
    existing = _sources.get(source.provider)
    if existing is not None and existing is not source:
        raise ImproperlyConfigured(
            f"a webhook source for '{source.provider}' is already registered"
        )
    _sources[source.provider] = source


def source_for(provider: str) -> Source:
    """The registered source; ``LookupError`` when no installed app handles ``provider``."""
    try:
        return _sources[provider]
    except KeyError:
        raise LookupError(f"no webhook source is registered for provider '{provider}'") from None


def sources() -> list[Source]:
    return sorted(_sources.values(), key=lambda source: source.provider)


def body_key(body: bytes) -> str:
    """The dedupe key of a delivery whose own ids cannot be trusted or read."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def unparseable(
    event_type: str, body: bytes, reason: str, company: Company | None = None
) -> Incoming:
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


def _column(field: Field[Any, Any]) -> str:
    # A concrete field always has its column; django-stubs type it optional for the rest.
    return cast(str, field.column)


# Per database alias, vendor and written fields: the INSERT statement and its fields, built
# once per process. Every webhook runs it, and building it each time was a fifth of
# store_event's CPU (0.31 -> 0.25 ms a call, in-process; docs/performance.md).
_statements: dict[tuple[str, str, tuple[str, ...]], tuple[str, list[Field[Any, Any]]]] = {}


def _insert_statement(connection: Any, names: tuple[str, ...]) -> tuple[str, list[Field[Any, Any]]]:
    key = (connection.alias, connection.vendor, names)
    found = _statements.get(key)
    if found is None:
        opts = WebhookEvent._meta
        concrete = {field.name: field for field in opts.concrete_fields}
        fields = [concrete[name] for name in names]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(_column(field)) for field in fields)
        sql = (
            f"INSERT INTO {quote(opts.db_table)} ({columns}) "  # noqa: S608 -- identifiers only
            f"VALUES ({', '.join(['%s'] * len(fields))}) "
            f"ON CONFLICT ({quote('provider')}, {quote('dedupe_key')}) DO NOTHING "
            f"RETURNING {quote(_column(opts.pk))}"
        )
        found = _statements[key] = (sql, fields)
    return found


def store_event(
    provider: str, incoming: Incoming, headers: dict[str, str], body: bytes
) -> tuple[int, bool]:
    """Insert the event unless ``(provider, dedupe_key)`` exists: ``(id, created)``.

    ``incoming.stored_body`` and ``incoming.stored_headers``, when the check set them, are
    what is written in place of ``body`` and alongside ``headers``.

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
        "headers": {**headers, **incoming.stored_headers},
        "body": stored_text(incoming, body),
        "status": incoming.status,
        "attempts": 0,
        "last_error": incoming.last_error,
        "processed_at": None,
    }
    connection = connections[router.db_for_write(WebhookEvent)]
    sql, fields = _insert_statement(connection, tuple(values))
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is not None:
        return row[0], True
    existing = WebhookEvent.objects.using(connection.alias).only("pk")
    return existing.get(provider=provider, dedupe_key=values["dedupe_key"]).pk, False


# --- deliveries no key can verify ------------------------------------------------------

REFUSED_MESSAGE = "The webhook signature could not be verified."
# A stored body that starts with this is not the delivery: only its size and hash are kept.
TRUNCATED_MARKER = "otto:body-not-stored"


def stored_text(incoming: Incoming, body: bytes) -> str:
    """The body text an event row keeps: a replacement the check asked for, or an
    unverifiable delivery capped, or the delivery as received."""
    if not incoming.verified:
        return capped_body(body)
    return decode_body(body if incoming.stored_body is None else incoming.stored_body)


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
        RATE_LIMIT_ERRORS.labels(scope="webhook-unverified").inc()
        logger.warning("unverified webhook rate not checked, delivery stored: %r", exc)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    return max(int(usage["time_left"]), 1)
