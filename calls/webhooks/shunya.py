"""Shunya (UWC) job webhooks: ``POST /webhooks/shunya``, ``job.completed`` and ``job.failed``.

The receive side of the inbox, registered by ``calls`` (:mod:`calls.apps`); the adapter
parts (signature, schemas) stay in :mod:`integrations.shunya`. A delivery is checked in
this order:

1. the signature (:mod:`integrations.shunya.signature`): ``X-Shunya-Signature`` over the
   timestamp and the raw body with ``UWC_HMAC_SECRET``, and ``X-Shunya-Timestamp`` within
   ±300 s. A bad or stale one is 401 and nothing is stored. A replay from the admin checks
   the signature alone: a stored delivery can never be fresh;
2. the body (:class:`integrations.shunya.schemas.JobEvent`): one that cannot be parsed is
   stored ``failed`` with the reason;
3. the tenant: the job's metadata carries the Otto company it was submitted for
   (:data:`calls.shunya.COMPANY_KEY`); the event is stored under that company.

The dedupe key is the job id and the event, so a redelivery is acknowledged and not
processed again. Processing (queue ``default``, inside the inbox's transaction) is
:func:`handle_job`: :func:`calls.shunya.complete_from_webhook` applies the result exactly
once, racing the poller safely. A job id that belongs to another company than the one the
webhook names raises :class:`calls.shunya.WrongCompany`: the event is ``failed`` with the
reason and nothing is applied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from django.conf import settings
from pydantic import ValidationError

from calls import shunya
from calls.models import ShunyaJob
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
from integrations.shunya.schemas import JobEvent
from integrations.shunya.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOLERANCE_SECONDS,
    check_shunya_signature,
)
from otto.models import Company

Status = WebhookEvent.Status

EVENT_TYPES = ("job.completed", "job.failed")
HEADERS = (SIGNATURE_HEADER.lower(), TIMESTAMP_HEADER.lower(), "content-type", "user-agent")


def check_delivery(
    body: bytes, headers: Mapping[str, str], route_event_type: str, *, replay: bool
) -> Incoming:
    signed = check_shunya_signature(
        body,
        headers.get(SIGNATURE_HEADER.lower()),
        headers.get(TIMESTAMP_HEADER.lower()),
        settings.UWC_HMAC_SECRET or "",
        # A stored delivery can never be fresh again: a replay checks the signature alone.
        tolerance=float("inf") if replay else TOLERANCE_SECONDS,
    )
    if not signed:
        raise SignatureInvalid(
            "X-Shunya-Signature does not match the body, or X-Shunya-Timestamp is not within ±300 s"
        )
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return unparseable("unknown", body, "the body is not a JSON object")
    kind = str(payload.get("event") or "unknown")
    if kind not in EVENT_TYPES:
        # Stored, then ignored by the inbox (no handler): a new event type breaks nothing.
        return Incoming(event_type=kind, dedupe_key=body_key(body))
    try:
        event = JobEvent.model_validate(payload)
    except ValidationError as exc:
        return unparseable(kind, body, f"not a Shunya job event: {exc}"[:500])
    company = Company.objects.filter(pk=_company_id(event)).first()
    return Incoming(
        event_type=event.event,
        dedupe_key=f"{event.job.job_id}:{event.event}",
        company=company,
    )


def _company_id(event: JobEvent) -> int | None:
    metadata = getattr(event.job, "metadata", None) or {}
    value = str(metadata.get(shunya.COMPANY_KEY, ""))
    return int(value) if value.isdigit() else None


def handle_job(event: WebhookEvent) -> HandlerResult:
    """``job.completed`` / ``job.failed``: the job's result applied once, or its call failed."""
    payload = JobEvent.model_validate_json(event.body)
    try:
        shunya.complete_from_webhook(event.company_id, payload.job)
    except ShunyaJob.DoesNotExist as exc:
        # Not recorded (yet, or ever): the poller settles jobs Otto knows.
        return HandlerResult(status=Status.IGNORED, note=str(exc))
    return HandlerResult(company=event.company)


HANDLERS: dict[str, Handler] = dict.fromkeys(EVENT_TYPES, handle_job)

SOURCE = Source(
    provider=Provider.SHUNYA,
    headers=HEADERS,
    check=check_delivery,
    handlers=HANDLERS,
)
