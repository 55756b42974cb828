"""CallRail post-call webhooks: ``POST /callrail/call.completed`` and ``/callrail/call.modified``.

The receive side of the inbox. A delivery is checked in this order:

1. the tenant: the CallRail company id in the body (``company_resource_id`` ``COM…`` or
   legacy numeric ``company_id``) against ``Company.callrail_company_ids``, failing that
   the tracking number (E.164) against ``PhoneNumber``. Reading the body to find the
   tenant writes nothing; the key to verify with depends on it;
2. the ``Signature`` header, with THAT tenant's signing key: a bad one is 401 and nothing
   is stored;
3. the body (:mod:`integrations.callrail.webhook_schemas`): without a call id it is
   stored ``failed`` with the reason.

An unknown tenant (or one without a signing key yet) is stored ``unmatched`` without a
company and answered 200, because CallRail disables an integration whose deliveries fail
and never resends. Its signature cannot be checked yet, so its dedupe key is a hash of the
body, in a key space of its own: an unsigned delivery can never pre-empt the real key of a
call. An admin replay, once the tenant is configured, resolves, verifies and re-keys it.
A webhook never creates a tenant.

SEAM: processing is ``ingest_call`` (issue 5), which does not exist yet. Until it does,
``HANDLERS`` is empty and ``processes=False``: nothing is enqueued, and matched events stay
``received`` (with their company) for ingest to pick up. Ingest registers
``call.completed``/``call.modified`` handlers here and flips ``processes`` to True; the
inbox then enqueues new events and the reaper or a one-off requeue drains the backlog.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import ValidationError

from integrations import selectors
from integrations.callrail.signature import check_callrail_signature
from integrations.callrail.webhook_schemas import CallWebhook
from integrations.inbox import (
    Handler,
    Incoming,
    SignatureInvalid,
    Source,
    body_key,
    unparseable,
)
from integrations.models import Provider, WebhookEvent
from otto.models import Company

Status = WebhookEvent.Status

EVENT_TYPES = ("call.completed", "call.modified")
HEADERS = ("signature", "content-type", "user-agent")


def resolve_company(payload: dict) -> tuple[Company | None, str]:
    """The tenant a body names, and how it was found (or why not)."""
    ids = [str(payload[key]) for key in ("company_resource_id", "company_id") if payload.get(key)]
    by_id = selectors.companies_with_callrail_id(ids)
    if len(by_id) == 1:
        return by_id[0], f"CallRail company id {', '.join(ids)}"
    if len(by_id) > 1:
        names = ", ".join(str(company.pk) for company in by_id)
        return None, f"CallRail company id {', '.join(ids)} is configured on companies {names}"
    number = payload.get("tracking_phone_number") or payload.get("trackingnum")
    company = selectors.company_with_tracking_number(str(number) if number else None)
    if company is not None:
        return company, f"tracking number {number}"
    return None, (
        f"no company has CallRail company id {', '.join(ids) or '(none)'} "
        f"or tracking number {number or '(none)'}"
    )


def check_delivery(
    body: bytes, headers: Mapping[str, str], route_event_type: str, *, replay: bool
) -> Incoming:
    # CallRail signs no timestamp, so a replay checks exactly what a delivery checks.
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return unparseable(
            route_event_type,
            body,
            "the body is not a JSON object; its tenant, and so its signature, cannot be checked",
        )

    company, found_by = resolve_company(payload)
    if company is None:
        return Incoming(
            event_type=route_event_type,
            dedupe_key="unmatched:" + body_key(body),
            status=Status.UNMATCHED,
            last_error=f"unknown tenant: {found_by}",
        )
    signing_key = company.callrail_signing_key
    if not signing_key:
        return Incoming(
            event_type=route_event_type,
            dedupe_key="unmatched:" + body_key(body),
            status=Status.UNMATCHED,
            last_error=f"company {company.pk} (by {found_by}) has no CallRail signing key yet",
        )
    if not check_callrail_signature(body, headers.get("signature"), signing_key.reveal()):
        raise SignatureInvalid(f"the Signature header does not match company {company.pk}'s key")

    try:
        call = CallWebhook.model_validate(payload)
    except ValidationError as exc:
        reason = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        return unparseable(route_event_type, body, reason, company=company)
    return Incoming(
        event_type=route_event_type, dedupe_key=call.dedupe_key(route_event_type), company=company
    )


# Empty until ingest_call exists (see SEAM above): an event type without a handler would
# otherwise be marked "ignored" and lost to ingest.
HANDLERS: dict[str, Handler] = {}

SOURCE = Source(
    provider=Provider.CALLRAIL,
    headers=HEADERS,
    check=check_delivery,
    handlers=HANDLERS,
    processes=False,
)
