"""Call ingest: from a CallRail webhook, reconciliation or backfill to a stored call.

The stages ingest owns (``Call.Stage``, docs/operations.md "Call ingest"):

- ``received``: the row exists; :func:`ingest_call` has not finished with it yet.
- ``recorded``: the API's view of the call is applied and its audio is in storage; the call
  was handed to transcription through the one seam, :func:`calls.pipeline.start_transcription`.
- ``skipped`` (terminal): there is nothing to transcribe (missed call, no audio, a recording
  CallRail no longer has, too short); ``stage_reason`` says which.
- ``failed`` (terminal until ops retry it): ``last_error`` says why.

**Ids.** A webhook may name a call only by its legacy numeric id, while the API's canonical
id is ``CAL…``. Such a delivery creates a *provisional* row keyed by the numeric id
(``external_id`` = ``legacy_id`` = the number). Ingest fetches the call by that id, learns
its ``CAL…`` id, and renames the row; if a row with the ``CAL…`` id appeared meanwhile (from
reconciliation, or a delivery that carried both ids), the provisional row is merged into it
(its webhook events move over) and deleted. So numeric and ``CAL…`` deliveries of one call
end as one ``Call``.

**Lease.** :func:`ingest_call` claims a ``received`` call with one compare-and-set that bumps
``attempts`` and sets ``next_attempt_at`` to now + a lease longer than a task may live. Every
later write filters on that exact ``next_attempt_at``: a worker whose lease was taken over
(it was presumed dead) changes nothing. A killed worker's call becomes due when the lease
expires, and ``retry-due-calls`` enqueues it again. No network call runs inside a
transaction.
"""

from __future__ import annotations

import datetime
import logging
import tempfile
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from calls import pipeline, stages
from calls.models import Call
from integrations.callrail import schemas
from integrations.callrail.client import CallRailClient
from integrations.callrail.webhook_schemas import CallWebhook
from integrations.errors import ProviderError
from integrations.models import WebhookEvent
from otto import selectors as core_selectors
from otto import services as core_services
from otto.models import Company, Contact
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

Stage = Call.Stage

# Shorter audio holds no conversation worth transcribing.
MIN_RECORDING_SECONDS = 3
# Recordings up to this size are buffered in memory, larger ones spill to a temporary file.
SPOOL_BYTES = 4 * 1024 * 1024


def _lease() -> datetime.timedelta:
    # Longer than the cluster lets a task live, so a live task never loses its claim.
    return datetime.timedelta(seconds=settings.Q_TASK_TIMEOUT + 60)


# --- entry points -----------------------------------------------------------------------


def request_ingest(
    call: Call, *, refetch_recording: bool = False, actor: Any = None, reason: str = ""
) -> bool:
    """Put ``call`` back to be ingested (admin: "re-run ingest", "re-fetch recording").

    A ``received``, ``failed`` or ``skipped`` call, or any call with ``refetch_recording``,
    goes back to ``received`` with fresh attempts and is enqueued; re-fetching forgets the
    stored recording so ingest downloads it again and hands it to transcription again. A
    call further on (``recorded`` and later) keeps its stage and recording: its CallRail
    details are re-fetched (:func:`refresh_call`).
    """
    from calls import tasks

    own = Call.objects.filter(pk=call.pk, company=call.company_id, stage=call.stage)
    if not refetch_recording and call.stage not in (Stage.RECEIVED, Stage.FAILED, Stage.SKIPPED):
        enqueue(Queue.DEFAULT, tasks.refresh_call, call.pk)
        return True
    changes: dict[str, Any] = {
        "attempts": 0,
        "next_attempt_at": None,
        "last_error": "",
    }
    if refetch_recording:
        changes |= {
            "recording": "",
            "recording_size": None,
            "recording_sha256": "",
            "recording_content_type": "",
        }
    reason = reason or ("recording re-fetch requested" if refetch_recording else "re-ingest")
    if stages.move(own, call, Stage.RECEIVED, reason=reason, actor=actor, **changes):
        enqueue(Queue.DEFAULT, tasks.ingest_call, call.pk)
        return True
    return False


def upsert_from_webhook(company: Company, webhook: CallWebhook, event: WebhookEvent) -> Call:
    """The call a webhook names, created if new, with ``event`` linked to it.

    Database only: the inbox runs it inside the transaction that marks the event
    processed. A call still ``received`` is enqueued for ingest (on commit); a
    ``call.modified`` of a call ingest is done with re-fetches its details only, without
    downloading the recording or handing it to transcription again.
    """
    from calls import tasks

    call, _ = upsert_call(
        company,
        call_id=webhook.resource_id or webhook.id,
        legacy_id=webhook.id,
        started_at=webhook.start_time or event.received_at,
    )
    call.webhook_events.add(event)
    if call.stage == Stage.RECEIVED:
        enqueue(Queue.DEFAULT, tasks.ingest_call, call.pk)
    elif event.event_type == "call.modified":
        enqueue(Queue.DEFAULT, tasks.refresh_call, call.pk)
    return call


def upsert_call(
    company: Company,
    *,
    call_id: str | None,
    legacy_id: str | None = None,
    started_at: datetime.datetime | None = None,
) -> tuple[Call, bool]:
    """The company's call with CallRail id ``call_id`` (``CAL…`` or legacy numeric), and
    whether it was created. Race-safe through the unique ``(company, source, external_id)``.

    A new call starts at ``started_at`` (CallRail's start time as far as it is known, else
    now) until ingest reads the real one, so it always has a place in the time-ordered list.
    """
    started_at = started_at or timezone.now()
    canonical = next((i for i in (call_id, legacy_id) if i and i.startswith("CAL")), None)
    legacy = next((i for i in (legacy_id, call_id) if i and i.isdigit()), None)
    if canonical is None and legacy is None:
        raise ValueError(f"{call_id!r} is neither a CAL… id nor a legacy numeric id")
    key = {"company": company, "source": Call.Source.CALLRAIL}
    calls = Call.objects.filter(**key)
    if canonical is None:
        # Known under its CAL… id (legacy_id kept) or provisionally under the number.
        known = sorted(
            calls.filter(Q(external_id=legacy) | Q(legacy_id=legacy)),
            key=lambda row: row.external_id == legacy,
        )
        if known:
            return known[0], False
        return Call.objects.get_or_create(
            **key, external_id=legacy, defaults={"legacy_id": legacy, "started_at": started_at}
        )
    if legacy and not calls.filter(external_id=canonical).exists():
        # A provisional row for this call takes its canonical id; if the canonical row
        # appeared meanwhile the rename fails and ingest merges the provisional one.
        try:
            with transaction.atomic():
                calls.filter(external_id=legacy).update(external_id=canonical)
        except IntegrityError:
            pass
    call, created = Call.objects.get_or_create(
        **key, external_id=canonical, defaults={"legacy_id": legacy or "", "started_at": started_at}
    )
    if legacy and not call.legacy_id:
        calls.filter(pk=call.pk).update(legacy_id=legacy)
        call.legacy_id = legacy
    return call, created


# --- ingest -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredRecording:
    name: str
    size: int
    sha256: str
    content_type: str


def ingest_call(call_id: int, *, listed: schemas.Call | None = None) -> str | None:
    """Ingest one ``received`` call; its stage afterwards, or None if it was not ours.

    Fetches the call from CallRail (the webhook is a trigger, not the truth) unless
    ``listed`` already holds the API's answer (backfill), applies it, finds or creates the
    contact, streams the recording into storage and hands the call to transcription.
    Idempotent: a call that is not ``received`` (or is leased to another worker) is left
    alone.
    """
    claim = _claim(call_id)
    if claim is None:
        logger.info("call %s is not due for ingest; skipped", call_id)
        return None
    call, lease = claim
    return stages.attempt(
        _leased(call, lease), call, lambda: _ingest(call, lease, listed), back_to=None
    )


def _ingest(call: Call, lease: datetime.datetime, listed: schemas.Call | None) -> str | None:
    client = core_selectors.callrail_client(call.company)
    found = listed or client.get_call(call.external_id)
    if found.id != call.external_id:
        call = _take_canonical_id(call, lease, found.id)
        if call is None:
            return None
    call = apply_callrail_call(call, found, lease=lease)
    reason = _nothing_to_record(found)
    if reason:
        return _finish(call, lease, Stage.SKIPPED, reason=reason)
    recording = _store_recording(call, client)
    if recording is None:
        reason = "CallRail has no recording for this call any more (HTTP 404)"
        return _finish(call, lease, Stage.SKIPPED, reason=reason)
    return _finish(call, lease, Stage.RECORDED, recording=recording)


def refresh_call(call_id: int) -> None:
    """Re-fetch a call ingest is done with and apply what changed (note, tags, lead
    status…); its stage, recording and transcription are left as they are."""
    from calls import tasks

    call = Call.objects.select_related("company").filter(pk=call_id).first()
    if call is None or call.stage == Stage.RECEIVED:
        return  # gone, or ingest will fetch it anyway
    found = core_selectors.callrail_client(call.company).get_call(call.external_id)
    apply_callrail_call(call, found)
    # The name and tags are searchable: index again (a no-op until transcribed is fine).
    enqueue(Queue.INDEXING, tasks.index_call, call.pk)


def store_without_recording(call: Call, found: schemas.Call, reason: str) -> None:
    """Apply CallRail's view of a new call and end it ``skipped`` without downloading its
    audio (``backfill_calls --no-recordings``); "re-fetch recording" brings it in later."""
    with transaction.atomic():
        apply_callrail_call(call, found)
        stages.move(Call.objects.filter(stage=Stage.RECEIVED), call, Stage.SKIPPED, reason=reason)


def _claim(call_id: int) -> tuple[Call, datetime.datetime] | None:
    now = timezone.now()
    lease = now + _lease()
    claimed = (
        Call.objects.filter(
            pk=call_id, stage=Stage.RECEIVED, attempts__lt=settings.PIPELINE_MAX_ATTEMPTS
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(attempts=F("attempts") + 1, next_attempt_at=lease)
    )
    if not claimed:
        return None
    return Call.objects.select_related("company").get(pk=call_id), lease


def _leased(call: Call, lease: datetime.datetime):
    return Call.objects.filter(pk=call.pk, stage=Stage.RECEIVED, next_attempt_at=lease)


def _take_canonical_id(call: Call, lease: datetime.datetime, canonical: str) -> Call | None:
    """Rename a provisional (numeric-id) row to its ``CAL…`` id, or merge it into the row
    that already has it. Returns the row to go on with, or None when merged away."""
    from calls import tasks

    with transaction.atomic():
        row = _leased(call, lease).select_for_update().first()
        if row is None:
            raise stages.LeaseLost
        try:
            with transaction.atomic():
                Call.objects.filter(pk=row.pk).update(external_id=canonical)
            row.external_id = canonical
            return row
        except IntegrityError:
            pass
        existing = Call.objects.get(
            company=row.company_id, source=row.source, external_id=canonical
        )
        existing.webhook_events.add(*row.webhook_events.all())
        if not existing.legacy_id:
            Call.objects.filter(pk=existing.pk).update(legacy_id=row.legacy_id)
        row.delete()
        logger.info("call %s (%s) merged into call %s", call.pk, call.external_id, existing.pk)
        if existing.stage == Stage.RECEIVED:
            enqueue(Queue.DEFAULT, tasks.ingest_call, existing.pk)
    return None


def apply_callrail_call(
    call: Call, found: schemas.Call, *, lease: datetime.datetime | None = None
) -> Call:
    """Write CallRail's view of the call and link its contact; with ``lease``, only while
    the lease holds (else :class:`calls.stages.LeaseLost`)."""
    fields = _fields_from_api(found)
    with transaction.atomic():
        if fields["customer_number"]:
            fields["contact"] = _contact_for(call.company, fields["customer_number"], found)
        rows = _leased(call, lease) if lease else Call.objects.filter(pk=call.pk)
        if not rows.update(**fields):
            raise stages.LeaseLost
    for name, value in fields.items():
        setattr(call, name, value)
    return call


def _fields_from_api(found: schemas.Call) -> dict[str, Any]:
    def text(value: str | None, limit: int) -> str:
        return (value or "")[:limit]

    def seconds(value: int | None) -> int | None:
        return value if value is not None and value >= 0 else None

    direction = found.direction if found.direction in Call.Direction.values else ""
    return {
        "direction": direction,
        "answered": found.answered,
        "voicemail": bool(found.voicemail),
        "started_at": found.start_time,
        "duration_seconds": seconds(found.duration),
        "customer_number": _e164(found.customer_phone_number),
        "tracking_number": _e164(found.tracking_phone_number),
        "customer_name": text(found.customer_name, 200),
        "customer_city": text(found.customer_city, 100),
        "customer_state": text(found.customer_state, 50),
        "source_name": text(found.source_name or found.source, 200),
        "campaign": text(found.campaign, 200),
        "tags": list(found.tags),
        "note": found.note or "",
        "lead_status": text(found.lead_status, 50),
        "recording_duration_seconds": seconds(found.recording_duration),
    }


def _e164(number: str | None) -> str:
    # Blocked and anonymous callers have no usable number: the call is kept without one.
    if not number:
        return ""
    try:
        return core_services.check_phone(number)
    except ValidationError:
        return ""


def _contact_for(company: Company, phone: str, found: schemas.Call) -> Contact:
    """The company's contact with ``phone``; created if new, race-safe through the unique
    ``(company, phone)`` constraint (the loser of a race gets the winner's row)."""
    existing = core_selectors.contact_with_phone(company, phone)
    if existing is not None:
        return existing
    try:
        return core_services.create_contact(
            company,
            phone=phone,
            name=(found.customer_name or "")[:200],
            city=(found.customer_city or "")[:100],
            state=(found.customer_state or "")[:50],
        )
    except core_services.DuplicateContact as duplicate:
        return duplicate.existing


def _nothing_to_record(found: schemas.Call) -> str:
    if found.has_recording:
        if (
            found.recording_duration is not None
            and found.recording_duration < MIN_RECORDING_SECONDS
        ):
            return f"the recording is too short to transcribe ({found.recording_duration} s)"
        return ""
    if found.voicemail:
        return "voicemail without audio"
    if found.answered is False:
        return "missed call: nothing was recorded"
    return "CallRail has no recording for this call"


def _store_recording(call: Call, client: CallRailClient) -> StoredRecording | None:
    """Stream the call's audio into storage at ``call.recording_path``; None when CallRail
    answers 404. Never more than ``RECORDING_MAX_BYTES``, never all of it in memory: it is
    spooled to a temporary file first, so a refused or broken download leaves no file."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        try:
            fetched = client.download_recording_to(
                call.external_id, spool, max_bytes=settings.RECORDING_MAX_BYTES
            )
        except ProviderError as exc:
            if exc.status == 404:
                return None
            raise
        spool.seek(0)
        path = call.recording_path
        # A retry or a re-fetch replaces the file rather than saving a renamed copy.
        if default_storage.exists(path):
            default_storage.delete(path)
        name = default_storage.save(path, File(spool, name=path))
    return StoredRecording(name, fetched.size, fetched.sha256, fetched.content_type)


def _finish(
    call: Call,
    lease: datetime.datetime,
    stage: str,
    *,
    reason: str = "",
    recording: StoredRecording | None = None,
) -> str:
    changes: dict[str, Any] = {"next_attempt_at": None, "last_error": ""}
    if recording is not None:
        changes |= {
            "recording": recording.name,
            "recording_size": recording.size,
            "recording_sha256": recording.sha256,
            "recording_content_type": recording.content_type[:100],
        }
    with transaction.atomic():
        if not stages.move(_leased(call, lease), call, stage, reason=reason, **changes):
            raise stages.LeaseLost
        if stage == Stage.RECORDED:
            # Exactly once: only the compare-and-set that moved the call gets here.
            pipeline.start_transcription(call)
    logger.info("call %s ingested: %s %s", call.pk, stage, reason)
    return stage
