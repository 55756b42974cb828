"""The call a delivery names: created if new, found by its ``CAL…`` or legacy numeric id.

**Ids.** A webhook may name a call only by its legacy numeric id, while the API's canonical
id is ``CAL…``. Such a delivery creates a *provisional* row keyed by the numeric id
(``external_id`` = ``legacy_id`` = the number). Ingest fetches the call by that id, learns
its ``CAL…`` id, and renames the row; if a row with the ``CAL…`` id appeared meanwhile (from
reconciliation, or a delivery that carried both ids), the provisional row is merged into it
(:func:`calls.services.ingest.take_canonical_id`). So numeric and ``CAL…`` deliveries of
one call end as one ``Call``.
"""

from __future__ import annotations

import datetime
from typing import cast

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from calls.models import Call
from integrations.callrail.webhook_schemas import CallWebhook
from integrations.models import WebhookEvent
from otto.models import Company
from otto.queues import Queue, enqueue

Stage = Call.Stage


def upsert_from_webhook(company: Company, webhook: CallWebhook, event: WebhookEvent) -> Call:
    """The call a webhook names, created if new, with ``event`` linked to it.

    Database only: the inbox runs it inside the transaction that marks the event
    processed. A call still ``received`` is enqueued for ingest (on commit); one an ingest
    worker holds is left to it (it fetches the call anyway); a ``call.modified`` of a call
    ingest is done with re-fetches its details only, without downloading the recording or
    handing it to transcription again.
    """
    from calls import tasks  # tasks imports this package

    call, _ = upsert_call(
        company,
        call_id=webhook.resource_id or webhook.id,
        legacy_id=webhook.id,
        started_at=webhook.start_time or event.received_at,
    )
    call.webhook_events.add(event)
    if call.stage == Stage.RECEIVED:
        enqueue(Queue.DEFAULT, tasks.ingest_call, call.pk)
    elif call.stage != Stage.INGESTING and event.event_type == "call.modified":
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
        # With no canonical id, the check above guarantees a legacy one.
        legacy = cast(str, legacy)
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
