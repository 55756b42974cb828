"""CallRail post-call webhooks: ``POST /callrail/call.completed`` and ``/callrail/call.modified``.

The receive side of the inbox, registered by ``calls`` (:mod:`calls.apps`); the adapter
parts (signature, body schema) stay in :mod:`integrations.callrail`. A delivery is checked
in this order:

1. the tenant: the CallRail company id in the body (``company_resource_id`` ``COM…`` or
   legacy numeric ``company_id``) against ``CallRailCompany``, failing that the tracking
   number (E.164) against ``PhoneNumber``; an inactive tenant is nobody. Reading the body
   to find the tenant writes nothing; the key to verify with depends on it;
2. the ``Signature`` header, with THAT tenant's signing key: a bad one is 401 and nothing
   is stored;
3. the body (:mod:`integrations.callrail.webhook_schemas`): without a call id it is
   stored ``failed`` with the reason.

An unknown tenant (or one without a signing key yet) is stored ``unmatched`` without a
company, and answered exactly like a bad signature (401, one generic body), so nobody can
probe which CallRail companies are customers (:func:`integrations.inbox.refused`). Its
signature cannot be checked yet, so its dedupe key is a hash of the
body, in a key space of its own: an unsigned delivery can never pre-empt the real key of a
call. An admin replay, once the tenant is configured, resolves, verifies and re-keys it.
A webhook never creates a tenant.

Processing (queue ``default``, inside the inbox's transaction) is :func:`handle_call`: it
upserts the ``Call`` the event names and links the event to it
(:func:`calls.services.upsert_from_webhook`), which enqueues ``ingest_call`` on commit for a
call not ingested yet. A ``call.modified`` of a call already ingested only re-fetches its
details. The webhook is a trigger: ingest re-fetches the call from CallRail's API.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping

from pydantic import ValidationError

from calls.services import upsert_from_webhook
from integrations.callrail.signature import check_callrail_signature
from integrations.callrail.webhook_schemas import CallWebhook
from integrations.inbox import (
    Handler,
    HandlerResult,
    Incoming,
    SignatureInvalid,
    Source,
    body_key,
    unparseable,
)
from integrations.models import Provider, WebhookEvent
from otto import selectors
from otto.models import Company

Status = WebhookEvent.Status

EVENT_TYPES = ("call.completed", "call.modified")
HEADERS = ("signature", "content-type", "user-agent")


def resolve_company(payload: dict) -> tuple[Company | None, str]:
    """The tenant a body names, and how it was found (or why not)."""
    ids = [str(payload[key]) for key in ("company_resource_id", "company_id") if payload.get(key)]
    company, found_id = selectors.callrail_tenant(ids)
    if company is not None:
        return company, f"CallRail company id {found_id}"
    number = payload.get("tracking_phone_number") or payload.get("trackingnum")
    company = selectors.tracking_number_tenant(str(number) if number else None)
    if company is not None:
        return company, f"tracking number {number}"
    return None, (
        f"no company has CallRail company id {', '.join(ids) or '(none)'} "
        f"or tracking number {number or '(none)'}"
    )


# Finding the tenant (a JSON query) and decrypting its signing key cost more than storing
# the event. A tenant and key that verified a delivery are remembered per process for
# TENANT_MEMORY_SECONDS; a delivery that does not verify against the remembered key is
# checked against the database, so a new key or a moved CallRail id works at once (CallRail
# never resends). The cost: a replaced key still verifies for that long in each process.
TENANT_MEMORY_SECONDS = 30.0
MAX_REMEMBERED = 1024
_remembered: dict[tuple[str, ...], tuple[float, Company, str]] = {}


def _lookup_key(payload: dict) -> tuple[str, ...]:
    names = ("company_resource_id", "company_id", "tracking_phone_number", "trackingnum")
    return tuple(str(payload.get(name) or "") for name in names)


def _remembered_tenant(lookup: tuple[str, ...], body: bytes, signature: str | None):
    entry = _remembered.get(lookup)
    if entry is None or entry[0] < time.monotonic():
        return None
    _, company, key = entry
    return company if check_callrail_signature(body, signature, key) else None


def _remember_tenant(lookup: tuple[str, ...], company: Company, key: str) -> None:
    if len(_remembered) >= MAX_REMEMBERED:
        _remembered.clear()
    _remembered[lookup] = (time.monotonic() + TENANT_MEMORY_SECONDS, company, key)


def forget_tenants(**kwargs: object) -> None:
    """Drop this process's remembered tenants (a company's CallRail settings changed)."""
    _remembered.clear()


def _tenant_from_database(
    payload: dict, lookup: tuple[str, ...], body: bytes, signature: str | None
) -> tuple[Company | None, str]:
    """The tenant, verified with its current key (then remembered); or None and why the
    delivery cannot be matched yet. A signature its tenant's key refutes raises."""
    company, found_by = resolve_company(payload)
    if company is None:
        return None, f"unknown tenant: {found_by}"
    signing_key = company.callrail_signing_key
    if not signing_key:
        return None, f"company {company.pk} (by {found_by}) has no CallRail signing key yet"
    key = signing_key.reveal()
    if not check_callrail_signature(body, signature, key):
        raise SignatureInvalid(f"the Signature header does not match company {company.pk}'s key")
    _remember_tenant(lookup, company, key)
    return company, ""


def check_delivery(
    body: bytes, headers: Mapping[str, str], route_event_type: str, *, replay: bool
) -> Incoming:
    # CallRail signs no timestamp, so a replay checks exactly what a delivery checks.
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        # No tenant, so no key: as unverifiable as an unknown tenant's delivery.
        return dataclasses.replace(
            unparseable(
                route_event_type,
                body,
                "the body is not a JSON object; its tenant, and so its signature, cannot be "
                "checked",
            ),
            verified=False,
        )

    signature = headers.get("signature")
    lookup = _lookup_key(payload)
    # A replay is ops asking for a fresh look: always from the database.
    company = None if replay else _remembered_tenant(lookup, body, signature)
    if company is None:
        company, unmatched = _tenant_from_database(payload, lookup, body, signature)
        if company is None:
            return Incoming(
                event_type=route_event_type,
                dedupe_key="unmatched:" + body_key(body),
                status=Status.UNMATCHED,
                last_error=unmatched,
                verified=False,
            )

    try:
        call = CallWebhook.model_validate(payload)
    except ValidationError as exc:
        reason = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        return unparseable(route_event_type, body, reason, company=company)
    return Incoming(
        event_type=route_event_type, dedupe_key=call.dedupe_key(route_event_type), company=company
    )


def handle_call(event: WebhookEvent) -> HandlerResult:
    """``call.completed`` and ``call.modified``: the call upserted, ingest enqueued."""
    if event.company is None:
        return HandlerResult(status=Status.UNMATCHED, note="the event has no tenant yet")
    # Validated when it was received; a replay re-checks it before it gets here.
    webhook = CallWebhook.model_validate_json(event.body)
    upsert_from_webhook(event.company, webhook, event)
    return HandlerResult(company=event.company)


HANDLERS: dict[str, Handler] = dict.fromkeys(EVENT_TYPES, handle_call)

SOURCE = Source(
    provider=Provider.CALLRAIL,
    headers=HEADERS,
    check=check_delivery,
    handlers=HANDLERS,
)
