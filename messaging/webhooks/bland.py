"""Bland's post-call webhook: ``POST /webhooks/bland`` (providers.md §6.2, §6.3).

The receive side of the inbox, registered by ``messaging`` (:mod:`messaging.apps`); the
adapter parts (signature, schemas) stay in :mod:`integrations.bland`. A delivery is checked
in this order:

1. ``X-Webhook-Signature``: hex HMAC-SHA256 of the body with the deployment's
   ``BLAND_WEBHOOK_SECRET`` (:func:`integrations.bland.signature.check_bland_signature`). A
   bad one is 401 and nothing is stored. Bland signs no timestamp: the dedupe key is what
   makes a replayed delivery harmless;
2. the body (:class:`integrations.bland.schemas.Call`): one that cannot be parsed is stored
   ``failed`` with the reason;
3. the tenant: the ``otto_company`` Otto put in the call's metadata when it placed it
   (:mod:`messaging.voice`). The handler looks the call up within that tenant only, so a
   delivery naming one tenant never touches another's call.

The dedupe key is Bland's call id: the post-call webhook comes once per call, and a
redelivery is acknowledged and not processed again.

Privacy. The body carries the call's transcript, which may hold a card number the customer
read out, so it is never stored as received: every string in it is redacted with
:mod:`calls.redaction` (as Shunya's, :mod:`calls.webhooks.shunya`), the counts of what was
found travel in the stored body (``otto_redaction``), and the stored body is sealed so an
admin replay verifies the seal instead of Bland's signature, which covers the original.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from pydantic import ValidationError

from calls.redaction import redact_text
from calls.webhooks.shunya import (
    REDACTION_KEY,
    SEAL_HEADER,
    check_seal,
    redact_json_body,
    sealed,
)
from integrations.bland.schemas import Call as BlandCall
from integrations.bland.signature import SIGNATURE_HEADER, check_bland_signature
from integrations.inbox import (
    Handler,
    HandlerResult,
    Incoming,
    SignatureInvalid,
    Source,
    unparseable,
)
from integrations.models import Provider, WebhookEvent
from messaging import voice
from otto.models import Company

Status = WebhookEvent.Status

EVENT_TYPE = "call.ended"
HEADERS = (SIGNATURE_HEADER.lower(), "content-type", "user-agent")


def check_delivery(
    body: bytes, headers: Mapping[str, str], route_event_type: str, *, replay: bool
) -> Incoming:
    if replay and SEAL_HEADER in headers:
        check_seal(body, headers)
    elif not check_bland_signature(
        body, headers.get(SIGNATURE_HEADER.lower()), settings.BLAND_WEBHOOK_SECRET or ""
    ):
        raise SignatureInvalid("X-Webhook-Signature does not match the body")
    incoming = _classify(body)
    return incoming if replay else _redacted(body, incoming)


def _classify(body: bytes) -> Incoming:
    try:
        call = BlandCall.model_validate_json(body)
    except ValidationError as exc:
        reason = redact_text(f"not a Bland call object: {exc}").text
        return unparseable(EVENT_TYPE, body, reason[:500])
    value = str(call.metadata.get(voice.COMPANY_KEY, ""))
    company = (
        Company.objects.filter(pk=int(value), is_active=True).first() if value.isdigit() else None
    )
    return Incoming(event_type=EVENT_TYPE, dedupe_key=f"call:{call.call_id}", company=company)


def _redacted(body: bytes, incoming: Incoming) -> Incoming:
    """``incoming`` with the redacted body to store in its place, when redaction changes it."""
    return sealed(incoming, body, redact_json_body(body, _transcript_counts))


def _transcript_counts(payload: dict[str, Any]) -> dict[str, int]:
    """What redaction finds in the original transcript (the stored one no longer shows it)."""
    try:
        call = BlandCall.model_validate(payload)
    except ValidationError:
        return {}  # stored failed, never applied
    return redact_text(voice.transcript_text(call)).counts


def handle_call(event: WebhookEvent) -> HandlerResult:
    """The call's outcome, transcript and summary onto its AiCall, and its tasks, once."""
    if event.company is None:
        return HandlerResult(status=Status.IGNORED, note="the call names no Otto tenant")
    call = BlandCall.model_validate_json(event.body)
    counts = (call.model_extra or {}).get(REDACTION_KEY)
    ai_call = voice.record_outcome(
        event.company, call, counts=counts if isinstance(counts, dict) else None
    )
    if ai_call is None:
        return HandlerResult(
            status=Status.IGNORED,
            company=event.company,
            note=f"no AI call of this tenant is Bland call {call.call_id}",
        )
    return HandlerResult(company=event.company)


HANDLERS: dict[str, Handler] = {EVENT_TYPE: handle_call}

SOURCE = Source(provider=Provider.BLAND, headers=HEADERS, check=check_delivery, handlers=HANDLERS)
