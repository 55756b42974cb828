"""Transcription by Shunya (UWC): a job submitted, then its result applied exactly once.

Shunya transcribes asynchronously, so a Shunya tenant's call goes through transcription in
three steps (docs/operations.md "Transcription by Shunya"):

1. **Submit** (:class:`ShunyaTranscriber`, queue ``uwc``): transcription claims the call
   ``recorded → transcribing`` exactly as for Deepgram (:func:`calls.stages.claim`) and
   calls ``submit``, which starts the job with no transaction open (the recording as a
   short-lived link; an idempotency key, so a resubmit after a timeout finds the same job)
   and returns it pending; transcription then extends the call's hold past
   :data:`JOB_TIMEOUT` and records the :class:`~calls.models.ShunyaJob`, in one
   transaction. While the job runs the call stays ``transcribing``; its lease keeps the
   reaper away and the poller owns it.
2. **Completion** arrives by the signed webhook (``POST /webhooks/shunya``, through the
   inbox: :mod:`integrations.shunya.webhooks`) or by the poller (:func:`poll_due_jobs`
   every minute, :func:`poll_job` on queue ``shunya``; backoff 5, 10, 30, 60 s, then every
   300 s), whichever comes first.
3. **Apply** (:func:`apply_result`): one transaction compare-and-sets the job
   ``submitted → completed``, stores the redacted Transcript and moves the call
   ``transcribing → transcribed`` (handing it to analysis). The loser of a race between the
   webhook and the poller finds the job no longer ``submitted`` and changes nothing.

A job still running :data:`JOB_TIMEOUT` after submission, a job Shunya failed, or one it
no longer knows ends the job and the call ``failed`` with the reason.

**Other job types.** The poller and the webhook serve every Shunya job; what a finished
job means belongs to the app that submitted it. ``calls`` sits below analysis and never
imports it, so each job type's appliers are registered (:func:`register_job_type`, from
the owning app's ``AppConfig.ready()``) the way stage hand-offs are; transcription's are
this module's own. Every applier settles its job through :func:`settle_job`, the one
compare-and-set ``submitted → completed|failed``, in the transaction that writes the
outcome, so whichever of the webhook and the poller comes second changes nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from calls import recordings, stages, transcription
from calls.models import Call, ShunyaJob
from calls.providers import PendingJob
from calls.transcribers import TranscriptionResult, Utterance
from integrations.errors import ProviderError
from integrations.shunya.client import PROVIDER, ShunyaClient
from integrations.shunya.schemas import Job, JobStatus
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

Stage = Call.Stage
Status = ShunyaJob.Status

# Seconds between polls of one job, from its submission: 5, 10, 30, 60, then 300 s. The
# poller's schedule runs every minute, so the short steps matter only to a self-hosted
# cluster polling more often; the webhook is the fast path.
POLL_BACKOFF = (5, 10, 30, 60)
POLL_CAP = 300
JOB_TIMEOUT = datetime.timedelta(hours=24)
REAPER_MARGIN = datetime.timedelta(hours=1)
POLL_BATCH = 500
# The metadata key the job carries its tenant in; the webhook is checked against it.
COMPANY_KEY = "otto_company_id"


class WrongCompany(Exception):
    """A webhook names a job of another company than its own: it is never applied."""


def poll_delay(polls: int) -> datetime.timedelta:
    """How long after its submission (``polls`` 0) or its ``polls``-th poll a job is
    polled next: 5, 10, 30, 60 s, then every 300 s."""
    seconds = POLL_BACKOFF[polls] if polls < len(POLL_BACKOFF) else POLL_CAP
    return datetime.timedelta(seconds=seconds)


def idempotency_key(call: Call, job_type: str = ShunyaJob.JobType.TRANSCRIPTION) -> str:
    """Stable across the retries of one submission (a resubmit after a timeout finds the
    job the first submit created); once a job of that type finished (a new run, or a
    retry after a failed job) the key changes, and so Shunya makes a new job."""
    finished = ShunyaJob.objects.filter(
        call=call, job_type=job_type, status__in=(Status.COMPLETED, Status.FAILED)
    ).count()
    return f"otto-call-{call.pk}-{job_type}-{finished}"


def audio_url(call: Call) -> str:
    """A short-lived link Shunya can fetch the recording from: presigned on S3, else the
    app's own signed link (``RECORDING_URL_TTL_SECONDS``) under ``PUBLIC_BASE_URL``."""
    url = recordings.recording_url(call)
    if url.startswith("/"):
        url = settings.PUBLIC_BASE_URL + url
    return url


def callback_url() -> str:
    return settings.PUBLIC_BASE_URL + reverse("webhook-shunya")


# --- 1. submit (queue uwc) ----------------------------------------------------------------


class ShunyaTranscriber:
    """Shunya's ASR as a transcriber: ``submit`` starts a job and returns it pending."""

    name = PROVIDER
    queue = Queue.UWC

    def submit(self, call: Call) -> PendingJob:
        job = ShunyaClient.from_settings().submit_transcription(
            call.company_id,
            audio_url=audio_url(call),
            callback_url=callback_url(),
            metadata={COMPANY_KEY: str(call.company_id), "otto_call_id": str(call.pk)},
            idempotency_key=idempotency_key(call),
        )
        return PendingJob(
            provider=PROVIDER,
            external_id=job.job_id,
            # The poller owns a running job and times it out at JOB_TIMEOUT; the call's
            # hold lasts a little longer, so the reaper takes it back only if the poller
            # never ran.
            wait_until=timezone.now() + JOB_TIMEOUT + REAPER_MARGIN,
            record=lambda: record_job(call, job, input_sha256=call.recording_sha256),
        )


def record_job(
    call: Call, job: Job, *, input_sha256: str = "", retry_of: ShunyaJob | None = None
) -> ShunyaJob:
    """The job's row, polled from now on; run in the transaction that extends the call's
    hold on it. ``retry_of``: the job this one was submitted again for."""
    now = timezone.now()
    record, created = ShunyaJob.objects.get_or_create(
        company_id=call.company_id,
        external_id=job.job_id,
        defaults={
            "call": call,
            "job_type": ShunyaJob.JobType(job.type.value),
            "attempts": 1,
            "next_poll_at": now + poll_delay(0),
            "input_sha256": input_sha256,
            "retry_of": retry_of,
        },
    )
    if not created:
        ShunyaJob.objects.filter(pk=record.pk).update(attempts=record.attempts + 1)
    return record


def to_result(remote: Job) -> TranscriptionResult | None:
    """A completed job's transcript as the domain's result (None: it carries none)."""
    result = remote.transcription()
    if result is None:
        return None
    return TranscriptionResult(
        provider=PROVIDER,
        text=result.text,
        utterances=tuple(
            Utterance(u.speaker, u.start, u.end, u.text, u.confidence) for u in result.utterances
        ),
        duration=result.duration,
        language=result.language,
        model=str(getattr(result, "model", "") or ""),
        request_id=remote.job_id,
    )


# --- 2. the poller (queue shunya) ---------------------------------------------------------


def poll_due_jobs(now: datetime.datetime | None = None) -> list[int]:
    """The schedule's fan-out: one :func:`poll_job` task per submitted job that is due."""
    from calls import tasks

    now = now or timezone.now()
    due = ShunyaJob.objects.filter(status=Status.SUBMITTED, next_poll_at__lte=now)
    ids = list(due.order_by("next_poll_at").values_list("pk", flat=True)[:POLL_BATCH])
    for job_id in ids:
        enqueue(Queue.SHUNYA, tasks.poll_shunya_job, job_id)
    return ids


def poll_job(job_id: int, now: datetime.datetime | None = None) -> str | None:
    """Ask Shunya about one submitted job, and apply or fail it when it is done. The job's
    status afterwards, or None when it was not ours (done, not due, or another poller's)."""
    now = now or timezone.now()
    job = ShunyaJob.objects.select_related("call").filter(pk=job_id).first()
    if job is None or job.status != Status.SUBMITTED:
        return None
    _, fail = appliers(job.job_type)
    if now - job.created_at > JOB_TIMEOUT:
        hours = int(JOB_TIMEOUT.total_seconds() // 3600)
        return fail(job, f"Shunya job {job.external_id} did not complete within {hours} h")
    # Claim this poll: two pollers of one tick ask Shunya once.
    claimed = ShunyaJob.objects.filter(
        pk=job.pk, status=Status.SUBMITTED, polls=job.polls, next_poll_at__lte=now
    ).update(polls=job.polls + 1, next_poll_at=now + poll_delay(job.polls + 1))
    if not claimed:
        return None
    try:
        remote = ShunyaClient.from_settings().get_job(job.company_id, job.external_id)
    except ProviderError as exc:
        if exc.permanent:
            return fail(job, f"Shunya job {job.external_id}: {exc}")
        ShunyaJob.objects.filter(pk=job.pk).update(last_error=str(exc)[:2000])
        logger.info("Shunya job %s: poll failed, polled again later: %s", job.pk, exc)
        return Status.SUBMITTED
    return settle(job, remote)


def settle(job: ShunyaJob, remote: Job) -> str:
    """Apply a finished job (from a poll or a webhook) with its type's appliers; leave a
    running one alone."""
    apply, fail = appliers(job.job_type)
    if remote.status is JobStatus.COMPLETED:
        return apply(job, remote)
    if remote.status is JobStatus.FAILED:
        error = remote.error
        detail = f"{error.code}: {error.message}" if error else "no reason given"
        return fail(job, f"Shunya job {job.external_id} failed: {detail}")
    return Status.SUBMITTED


# --- 3. apply, exactly once ---------------------------------------------------------------

# A completed job's result applied; a job that failed (with the reason) ended. Each
# returns the job's status afterwards.
Apply = Callable[[ShunyaJob, Job], str]
Fail = Callable[[ShunyaJob, str], str]
_APPLIERS: dict[str, tuple[Apply, Fail]] = {}


def register_job_type(job_type: str, *, apply: Apply, fail: Fail) -> None:
    """Make ``apply`` and ``fail`` settle every job of ``job_type`` (the owning app's
    ``ready()``). A second, different pair is a wiring mistake and fails at start-up."""
    job_type = ShunyaJob.JobType(job_type)
    current = _APPLIERS.get(job_type)
    if current is not None and current != (apply, fail):
        raise ImproperlyConfigured(f"Shunya {job_type} jobs are already settled by {current!r}")
    _APPLIERS[job_type] = (apply, fail)


def appliers(job_type: str) -> tuple[Apply, Fail]:
    try:
        return _APPLIERS[job_type]
    except KeyError:
        raise ImproperlyConfigured(f"no app settles Shunya {job_type} jobs") from None


def settle_job(job: ShunyaJob, status: str, *, result: Any = None, error: str = "") -> bool:
    """The one compare-and-set that ends a job: ``submitted`` → ``status``, with the hash
    of the ``result`` received (if any) and the ``error``. Run it in the transaction that
    writes the job's outcome; False means another completion settled it first, and the
    caller writes nothing."""
    fields: dict[str, Any] = {"status": status, "next_poll_at": None, "last_error": error[:2000]}
    if result is not None:
        digest = hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()
        fields.update(output_sha256=digest, completed_at=timezone.now())
    return bool(ShunyaJob.objects.filter(pk=job.pk, status=Status.SUBMITTED).update(**fields))


def job_status(job: ShunyaJob) -> str:
    return ShunyaJob.objects.values_list("status", flat=True).get(pk=job.pk)


def apply_result(job: ShunyaJob, remote: Job) -> str:
    """Store a completed job's transcript and move its call on, once: the compare-and-set
    on the job decides, in the transaction that writes everything else. Returns the job's
    status (``completed`` also when another applier got there first)."""
    transcribed = to_result(remote)
    if transcribed is None:
        return fail_job(job, f"Shunya job {job.external_id} completed without a transcript")
    call = job.call
    # Redaction and roles are computed before the transaction: CPU only, no writes.
    fields = transcription.transcript_fields(call, transcribed)
    with transaction.atomic():
        if not settle_job(job, Status.COMPLETED, result=remote.result):
            logger.info("Shunya job %s was already settled; nothing applied", job.pk)
            return job_status(job)
        rows = Call.objects.filter(pk=call.pk, stage=Stage.TRANSCRIBING)
        if not transcription.finish_transcription(rows, call, fields):
            # Ops moved the call meanwhile (failed or re-ran it): the job is done, the
            # call is theirs, and a stale result must not overwrite it.
            logger.warning("Shunya job %s completed, but call %s moved on", job.pk, call.pk)
            return Status.COMPLETED
    logger.info("call %s transcribed by Shunya (%s words)", call.pk, fields["word_count"])
    return Status.COMPLETED


def fail_job(job: ShunyaJob, error: str) -> str:
    """End a job and its call ``failed`` with ``error``, once."""
    with transaction.atomic():
        if not settle_job(job, Status.FAILED, error=error):
            return job_status(job)
        call = job.call
        rows = Call.objects.filter(pk=call.pk, stage=Stage.TRANSCRIBING)
        stages.move(rows, call, Stage.FAILED, reason=error, next_attempt_at=None, last_error=error)
    logger.warning("call %s failed: %s", call.pk, error)
    return Status.FAILED


# --- the webhook's service ----------------------------------------------------------------


def complete_from_webhook(company_id: int | None, remote: Job) -> ShunyaJob:
    """Settle the job a signed webhook reports. The webhook's tenant (the job's metadata)
    must be the job's own: a job id of another company is :class:`WrongCompany`, never
    applied."""
    jobs = ShunyaJob.objects.select_related("call").filter(external_id=remote.job_id)
    job = jobs.filter(company_id=company_id).first() if company_id is not None else None
    if job is None:
        others = list(jobs.values_list("company_id", flat=True))
        if others:
            raise WrongCompany(
                f"Shunya job {remote.job_id} belongs to company {others[0]}, "
                f"not to company {company_id} the webhook names"
            )
        raise ShunyaJob.DoesNotExist(f"no Shunya job {remote.job_id} of company {company_id}")
    settle(job, remote)
    return job


register_job_type(ShunyaJob.JobType.TRANSCRIPTION, apply=apply_result, fail=fail_job)
