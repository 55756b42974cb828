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

Privacy. A ``job.completed`` body carries Shunya's full, unredacted transcript, so it is
never written as received: :func:`check_delivery` redacts every string in the body
with :mod:`calls.redaction` (the rules of stored transcripts) and hands
the inbox that body to store (``Incoming.stored_body``), with the SHA-256 of the original
(``x-otto-body-sha256``) and a seal in the stored headers. A body that cannot be parsed
is redacted as text. The provider's HMAC covers the original bytes, so a replay cannot
verify it again: the stored body was verified at receipt, and a replay verifies the seal
instead (:func:`seal`: an HMAC with Django's ``SECRET_KEY`` over the original hash and
the stored body), which no one without the key can forge after a database edit.
Redaction is idempotent, so applying the stored body stores the same transcript as
applying the original; the counts of what was redacted travel in the stored body
(``otto_redaction``) because the redacted text no longer shows them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac
from pydantic import ValidationError

from calls import shunya
from calls.models import ShunyaJob, Transcript
from calls.redaction import redact_strings, redact_text, redact_utterances
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
# Stored with a body that is not the one Shunya signed (never sent by Shunya: the inbox
# keeps only HEADERS from a request, so a caller cannot supply these).
ORIGINAL_SHA256_HEADER = "x-otto-body-sha256"
SEAL_HEADER = "x-otto-body-seal"
REDACTION_KEY = "otto_redaction"
_SEAL_SALT = "calls.webhooks.shunya.stored-body"


def seal(original_sha256: str, stored_body: bytes) -> str:
    """Otto's own mark that it verified the delivery whose hash is ``original_sha256`` and
    stored ``stored_body`` in its place."""
    value = original_sha256.encode() + b"." + stored_body
    return salted_hmac(_SEAL_SALT, value, algorithm="sha256").hexdigest()


def check_delivery(
    body: bytes, headers: Mapping[str, str], route_event_type: str, *, replay: bool
) -> Incoming:
    if replay and SEAL_HEADER in headers:
        check_seal(body, headers)
    else:
        _check_signature(body, headers, replay=replay)
    incoming = _classify(body)
    if replay:
        # What is stored is already redacted (or had nothing to redact).
        return incoming
    return _redacted(body, incoming)


def _check_signature(body: bytes, headers: Mapping[str, str], *, replay: bool) -> None:
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


def check_seal(body: bytes, headers: Mapping[str, str]) -> None:
    """A replayed body must be the one Otto redacted and sealed when it arrived."""
    expected = seal(headers.get(ORIGINAL_SHA256_HEADER, ""), body)
    if not hmac.compare_digest(expected, headers.get(SEAL_HEADER, "")):
        raise SignatureInvalid("the stored body is not the one Otto redacted and sealed at receipt")


def _classify(body: bytes) -> Incoming:
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
        # pydantic quotes the offending input, which may be transcript text.
        reason = redact_text(f"not a Shunya job event: {exc}").text
        return unparseable(kind, body, reason[:500])
    company_id = _company_id(event)
    company = Company.objects.filter(pk=company_id).first() if company_id is not None else None
    return Incoming(
        event_type=event.event,
        dedupe_key=f"{event.job.job_id}:{event.event}",
        company=company,
    )


def _redacted(body: bytes, incoming: Incoming) -> Incoming:
    """``incoming`` with the body to store in place of ``body`` when redaction changes it.

    The dedupe key stays the one computed from the original, so a redelivery of the same
    original body is still a duplicate.
    """
    return sealed(incoming, body, redact_body(body))


def sealed(incoming: Incoming, body: bytes, stored: bytes) -> Incoming:
    """``incoming`` storing ``stored`` (a redaction of ``body``) with Otto's seal over it,
    so a replay can verify the redacted body; ``incoming`` as it is when nothing changed."""
    if stored == body:
        return incoming
    original = hashlib.sha256(body).hexdigest()
    return dataclasses.replace(
        incoming,
        stored_body=stored,
        stored_headers={ORIGINAL_SHA256_HEADER: original, SEAL_HEADER: seal(original, stored)},
    )


def redact_body(body: bytes) -> bytes:
    """``body`` with every transcript text redacted; ``body`` itself when nothing changed."""

    def counts(payload: dict[str, Any]) -> dict[str, Any] | None:
        job = payload.get("job")
        return _redaction_counts(job.get("result")) if isinstance(job, dict) else None

    return redact_json_body(body, counts)


def redact_json_body(
    body: bytes, counts: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> bytes:
    """A webhook body with every string redacted, and ``counts(payload)`` (what redaction
    found in the original transcript) stored under :data:`REDACTION_KEY`; ``body`` itself
    when nothing changed. Every string, not only the transcript's: ids, statuses and
    timestamps have nothing the rules would touch, and a malformed body may carry its text
    anywhere. A body that is not a JSON object is redacted as text."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        redacted_text = redact_text(body.decode("utf-8", errors="replace"))
        return redacted_text.text.encode() if redacted_text.counts else body
    found = counts(payload)
    redacted = redact_strings(payload)
    if redacted == payload:
        return body
    if found:
        redacted[REDACTION_KEY] = found
    return json.dumps(redacted, ensure_ascii=False, separators=(",", ":")).encode()


def _redaction_counts(result: Any) -> dict[str, Any] | None:
    """What the transcript's redaction found in the original, in the shape the stored
    ``Transcript`` records it: per-utterance when there are utterances, else the text's."""
    if not isinstance(result, dict):
        return None
    utterances = result.get("utterances")
    if isinstance(utterances, list) and utterances:
        found = redact_utterances([u if isinstance(u, dict) else {} for u in utterances])
        # Seconds as the Transcript stores them (floats), whatever the JSON had.
        spans = [
            {**span, **{k: float(span[k]) for k in ("start", "end") if span.get(k) is not None}}
            for span in found.spans
        ]
        return {"counts": found.counts, "spans": spans}
    return {"counts": redact_text(str(result.get("text") or "")).counts, "spans": []}


def _company_id(event: JobEvent) -> int | None:
    metadata = getattr(event.job, "metadata", None) or {}
    value = str(metadata.get(shunya.COMPANY_KEY, ""))
    return int(value) if value.isdigit() else None


def handle_job(event: WebhookEvent) -> HandlerResult:
    """``job.completed`` / ``job.failed``: the job's result applied once, or its call failed."""
    payload = JobEvent.model_validate_json(event.body)
    try:
        job = shunya.complete_from_webhook(event.company_id, payload.job)
    except ShunyaJob.DoesNotExist as exc:
        # Not recorded (yet, or ever): the poller settles jobs Otto knows.
        return HandlerResult(status=Status.IGNORED, note=str(exc))
    _restore_redaction_counts(job, payload.model_extra or {})
    return HandlerResult(company=event.company)


def _restore_redaction_counts(job: ShunyaJob, extra: Mapping[str, Any]) -> None:
    """The stored body was redacted at receipt, so redacting it again finds nothing to
    count: the transcript applied from it gets the counts and spans found in the original.
    Both appliers (this and the poller) compute them from the same original, so whichever
    applied the result, the figures are the same."""
    found = extra.get(REDACTION_KEY)
    if not isinstance(found, dict):
        return
    counts = {kind: n for kind, n in (found.get("counts") or {}).items() if n}
    spans = list(found.get("spans") or [])
    transcript = Transcript.objects.filter(call_id=job.call_id, request_id=job.external_id)
    # Unchanged when the poller applied the original first: a no-op is not a write.
    transcript.exclude(redaction_counts=counts, redaction_spans=spans).update(
        redaction_counts=counts, redaction_spans=spans
    )


HANDLERS: dict[str, Handler] = dict.fromkeys(EVENT_TYPES, handle_job)

SOURCE = Source(
    provider=Provider.SHUNYA,
    headers=HEADERS,
    check=check_delivery,
    handlers=HANDLERS,
)
