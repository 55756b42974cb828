"""Moving a call between pipeline stages: the one compare-and-set every stage move goes
through, its history row, and the backoff shared by the stages that retry.

A stage move is ``UPDATE calls_call SET stage = … WHERE pk = … AND <what the mover
expects>``: a row count of 0 means someone else moved the call first (another worker, the
reaper, ops), and the mover changes nothing. :func:`move` writes the
:class:`~calls.models.CallStageChange` row in the same transaction, so the history is
exactly the moves that happened.
"""

from __future__ import annotations

import datetime
import logging
import random
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from calls.models import Call, CallStageChange

logger = logging.getLogger(__name__)

# Backoff after a transient failure: 1, 2, 4, 8 … minutes (with jitter), at most 30.
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 30 * 60


def move(
    rows: QuerySet[Call],
    call: Call,
    to_stage: str,
    *,
    reason: str = "",
    actor: Any = None,
    **fields: Any,
) -> bool:
    """Move ``call`` to ``to_stage`` if ``rows`` (the compare-and-set filter, naming the
    call and what the mover expects of it) still matches; record the move. ``fields`` are
    written with it. Returns whether the move happened. ``call.stage`` is the stage the
    history records as the one left; on success ``call`` is updated in place."""
    now = timezone.now()
    changes = {"stage": to_stage, "stage_reason": reason[:200], "stage_changed_at": now, **fields}
    with transaction.atomic():
        if not rows.filter(pk=call.pk).update(**changes):
            return False
        CallStageChange.objects.create(
            company_id=call.company_id,
            call=call,
            from_stage=call.stage,
            to_stage=to_stage,
            reason=reason[:200],
            actor=actor if actor is not None and actor.is_authenticated else None,
        )
    for name, value in changes.items():
        setattr(call, name, value)
    return True


def record_moves(calls: list[Call], to_stage: str, *, reason: str = "") -> None:
    """History rows for calls a bulk ``UPDATE`` already moved (the reaper's give-ups)."""
    CallStageChange.objects.bulk_create(
        CallStageChange(
            company_id=call.company_id,
            call=call,
            from_stage=call.stage,
            to_stage=to_stage,
            reason=reason[:200],
        )
        for call in calls
    )


def deadline(stage: str) -> datetime.timedelta:
    """How long a call may stay in the in-progress ``stage`` (PIPELINE_STAGE_DEADLINES)."""
    return datetime.timedelta(seconds=settings.PIPELINE_STAGE_DEADLINES[stage])


def backoff(attempts: int, retry_after: float | None = None) -> datetime.timedelta:
    """Exponential in the attempts made, with jitter so a burst of failures (a provider
    outage) does not come back as one burst; never sooner than the provider asked."""
    ceiling = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    seconds = random.uniform(ceiling / 2, ceiling)  # noqa: S311 -- jitter, not a secret
    return datetime.timedelta(seconds=max(seconds, retry_after or 0))


def describe(exc: Exception) -> tuple[str, bool]:
    """An error's text for ``last_error``, and whether retrying cannot help."""
    from integrations.errors import ProviderError

    if isinstance(exc, ProviderError):
        return str(exc), exc.permanent
    return f"{type(exc).__name__}: {exc}", False


class LeaseLost(Exception):
    """The reaper or ops took the call back while this worker held it: stop quietly."""


def attempt(
    leased: QuerySet[Call], call: Call, work: Callable[[], str | None], *, back_to: str | None
) -> str | None:
    """Run one leased attempt at a stage; its outcome, or None when it was not ours.

    A :class:`ProviderError` is retried or fails the call (:func:`retry_or_fail`); any
    other error (a bug, a storage outage) is counted the same way, then raised so the task
    fails visibly (Sentry, django-q's Failure row tagged with the call).
    """
    from integrations.errors import ProviderError

    try:
        return work()
    except LeaseLost:
        logger.warning("call %s was taken back from this worker; it stops", call.pk)
        return None
    except ProviderError as exc:
        return retry_or_fail(leased, call, exc, back_to=back_to)
    except Exception as exc:
        retry_or_fail(leased, call, exc, back_to=back_to)
        raise


def retry_or_fail(
    leased: QuerySet[Call], call: Call, exc: Exception, *, back_to: str | None = None
) -> str | None:
    """After a failed attempt: ``failed`` with the reason when retrying cannot help or the
    attempts are used up; otherwise due again after a backoff, moved ``back_to`` its waiting
    stage (or left where it is when that is already the waiting stage). ``leased`` selects
    the call only while this worker's lease holds. The stage it ends in, or None when the
    lease was lost meanwhile."""
    error, permanent = describe(exc)
    if permanent or call.attempts >= settings.PIPELINE_MAX_ATTEMPTS:
        if not permanent:
            error = f"gave up after {call.attempts} attempts: {error}"
        moved = move(
            leased, call, Call.Stage.FAILED, reason=error, next_attempt_at=None, last_error=error
        )
        logger.warning("call %s failed: %s", call.pk, error)
        return Call.Stage.FAILED if moved else None
    delay = backoff(call.attempts, getattr(exc, "retry_after", None))
    changes = {"next_attempt_at": timezone.now() + delay, "last_error": error}
    if back_to is None:
        moved = leased.update(**changes)
    else:
        moved = move(leased, call, back_to, reason=f"will be retried: {error}", **changes)
    logger.info("call %s will be retried in %ss: %s", call.pk, int(delay.total_seconds()), error)
    return (back_to or call.stage) if moved else None
