"""Moving a call between pipeline stages: the one compare-and-set every stage move goes
through, its history row, and the backoff shared by the stages that retry.

A stage move is ``UPDATE calls_call SET stage = … WHERE pk = … AND <what the mover
expects>``: a row count of 0 means someone else moved the call first (another worker, the
reaper, ops), and the mover changes nothing. :func:`move` writes the
:class:`~calls.models.CallStageChange` row in the same transaction, so the history is
exactly the moves that happened.

**Claims.** Every stage that does work for a call claims it the same way, through
:func:`claim`: one compare-and-set from its *waiting* stage to its *in-progress* stage
(:data:`IN_PROGRESS`) that bumps ``attempts`` and sets ``next_attempt_at`` to the claim's
*lease* (now + ``PIPELINE_STAGE_DEADLINES[stage]``). Every later write of that run goes
through :meth:`Claim.rows`, which selects the call only while that exact lease holds, so a
worker presumed dead (the reaper put the call back) or overtaken (ops re-ran it) writes
nothing. The reaper therefore has one rule for every stage: an in-progress call past its
lease goes back to its waiting stage.
"""

from __future__ import annotations

import datetime
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from calls.models import Call, CallStageChange

logger = logging.getLogger(__name__)

# Backoff after a transient failure: 1, 2, 4, 8 … minutes (with jitter), at most 30.
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 30 * 60

Stage = Call.Stage
# Each in-progress stage, with the stage a call waits in before it (and goes back to when
# its attempt fails or its worker dies).
IN_PROGRESS: dict[str, str] = {
    Stage.INGESTING: Stage.RECEIVED,
    Stage.TRANSCRIBING: Stage.RECORDED,
}


def register_in_progress(stage: str, waiting: str) -> None:
    """Let a stage owned by an app above ``calls`` (analysis) claim calls through
    :func:`claim` and be covered by the reaper, like the stages above (its ``ready()``)."""
    IN_PROGRESS[Call.Stage(stage)] = Call.Stage(waiting)


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


@dataclass(frozen=True)
class Claim:
    """One worker's hold on a call in an in-progress stage, until ``lease``."""

    call: Call
    stage: str
    lease: datetime.datetime

    @property
    def waiting(self) -> str:
        return IN_PROGRESS[self.stage]

    def rows(self) -> QuerySet[Call]:
        """The call, only while this claim's lease holds: the filter of every later write."""
        return Call.objects.filter(pk=self.call.pk, stage=self.stage, next_attempt_at=self.lease)

    def extend(self, until: datetime.datetime, **fields: Any) -> Claim:
        """Hold the call until ``until`` (a provider job that finishes later); the claim
        that now holds it, or :class:`LeaseLost`. Run inside the caller's transaction."""
        if not self.rows().update(next_attempt_at=until, **fields):
            raise LeaseLost
        self.call.next_attempt_at = until
        return Claim(self.call, self.stage, until)


def due(stage: str, now: datetime.datetime | None = None) -> QuerySet[Call]:
    """Calls waiting in ``stage`` whose next attempt is due (no backoff, or it is over)."""
    now = now or timezone.now()
    return Call.objects.filter(stage=stage).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def claim(call: Call, stage: str) -> Claim | None:
    """Claim ``call`` for the in-progress ``stage``: a compare-and-set from its waiting
    stage (due, attempts left) that bumps ``attempts``, sets the lease and records the move.
    None when the call is not there, not due, out of attempts or another worker's."""
    lease = timezone.now() + deadline(stage)
    rows = due(IN_PROGRESS[stage]).filter(attempts__lt=settings.PIPELINE_MAX_ATTEMPTS)
    if not move(rows, call, stage, attempts=F("attempts") + 1, next_attempt_at=lease):
        return None
    call.refresh_from_db(fields=["attempts"])
    return Claim(call, stage, lease)


def attempt(claim: Claim, work: Callable[[], str | None]) -> str | None:
    """Run one attempt under ``claim``; its outcome, or None when it was not ours.

    A :class:`ProviderError` is retried or fails the call (:func:`retry_or_fail`); any
    other error (a bug, a storage outage) is counted the same way, then raised so the task
    fails visibly (Sentry, django-q's Failure row tagged with the call).
    """
    from integrations.errors import ProviderError

    call = claim.call
    try:
        return work()
    except LeaseLost:
        logger.warning("call %s was taken back from this worker; it stops", call.pk)
        return None
    except ProviderError as exc:
        return retry_or_fail(claim.rows(), call, exc, back_to=claim.waiting)
    except Exception as exc:
        retry_or_fail(claim.rows(), call, exc, back_to=claim.waiting)
        raise


def retry_or_fail(
    leased: QuerySet[Call], call: Call, exc: Exception, *, back_to: str
) -> str | None:
    """After a failed attempt: ``failed`` with the reason when retrying cannot help or the
    attempts are used up; otherwise moved ``back_to`` its waiting stage, due again after a
    backoff. ``leased`` selects the call only while this worker's lease holds. The stage it
    ends in, or None when the lease was lost meanwhile."""
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
    moved = move(leased, call, back_to, reason=f"will be retried: {error}", **changes)
    logger.info("call %s will be retried in %ss: %s", call.pk, int(delay.total_seconds()), error)
    return back_to if moved else None
