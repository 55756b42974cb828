"""Analysis by Shunya (UWC): a job submitted, then its result applied exactly once.

The analysis counterpart of :mod:`calls.shunya` (transcription), sharing its job rows,
poller and webhook (docs/analysis.md "Shunya"):

1. **Submit** (:class:`ShunyaAnalyzer`, queue ``uwc``): the analysis stage claims the
   call ``transcribed → analyzing`` as for OpenAI and calls ``submit``, which sends the
   same redacted, numbered transcript the OpenAI prompt carries (with an idempotency
   key, so a resubmit after a timeout finds the same job) and returns it pending. The
   stage extends the call's hold past the job's timeout and records the
   :class:`~calls.models.ShunyaJob` (``analysis``), in one transaction.
2. **Completion** arrives by the signed webhook or by the poller, whichever comes first:
   both settle a job through the appliers this module registers for analysis jobs
   (:func:`calls.shunya.register_job_type`, in :meth:`analysis.apps.AnalysisConfig.ready`).
3. **Apply** (:func:`apply_job`): the result is normalised here, at the adapter's edge,
   into :class:`analysis.schema.CallAnalysisOutput` and checked like OpenAI's, then stored
   by :func:`analysis.services.complete_job`: the job's compare-and-set and the call's
   move to ``analyzed`` (a new current version) in one transaction, so the second of the
   webhook and the poller changes nothing.

Failures count as attempts, as OpenAI's do: a job Shunya failed, one it no longer knows,
one still running after :data:`calls.shunya.JOB_TIMEOUT`, or a result that does not fit
the schema puts the call back to ``transcribed`` with a backoff (``failed`` after
``PIPELINE_MAX_ATTEMPTS``). A result citing an utterance that was not sent is asked for
once more within the attempt (:func:`resubmit`, a new job with ``retry_of``); a second
such result fails the call.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from typing import Any, get_args

import pydantic
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analysis import services
from analysis.analyzers import AnalysisResult, check_citations, prompt_for
from analysis.schema import ActionType, CallAnalysisOutput, CitedField, ObjectionCategory
from calls import shunya as jobs
from calls import stages
from calls.models import Call, ShunyaJob, Transcript
from calls.providers import PendingJob
from integrations.errors import ProviderError
from integrations.shunya import schemas
from integrations.shunya.client import PROVIDER, ShunyaClient
from otto.models import Company
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

Stage = Call.Stage
Status = ShunyaJob.Status
ANALYSIS = ShunyaJob.JobType.ANALYSIS

# Shunya may label the customer's sentiment; Otto stores a score (-1.0 … 1.0).
SENTIMENT_SCORES = {"negative": -0.6, "neutral": 0.0, "positive": 0.6}
CATEGORIES = frozenset(get_args(ObjectionCategory))
ACTION_TYPES = frozenset(get_args(ActionType))
CITED_FIELDS = frozenset(get_args(CitedField))


class ShunyaAnalyzer:
    """Shunya's analysis as an analyzer: ``submit`` starts a job and returns it pending."""

    name = PROVIDER
    queue = Queue.UWC

    def check_ready(self, company: Company) -> str | None:
        base_url = (
            settings.UWC_STAGING_BASE_URL if settings.USE_UWC_STAGING else settings.UWC_BASE_URL
        )
        if not base_url or not (settings.UWC_JWT_SECRET or settings.UWC_API_KEY):
            return (
                "Shunya (UWC) is not configured (UWC_BASE_URL and UWC_JWT_SECRET or "
                "UWC_API_KEY); analysis waits"
            )
        return None

    def submit(
        self, call: Call, transcript: Transcript, *, retry_of: ShunyaJob | None = None
    ) -> PendingJob:
        prompt = prompt_for(call, transcript)
        utterances = list(transcript.utterances or [])
        job = ShunyaClient.from_settings().submit_analysis(
            call.company_id,
            transcript=prompt.transcript,
            utterances=[
                {"index": i, "role": utterances[i].get("role") or "", "text": utterances[i]["text"]}
                for i in sorted(prompt.sent)
            ],
            callback_url=jobs.callback_url(),
            metadata={
                jobs.COMPANY_KEY: str(call.company_id),
                "otto_call_id": str(call.pk),
                "call_started_at": (call.started_at or call.created_at).isoformat(),
                "timezone": call.company.timezone,
            },
            idempotency_key=jobs.idempotency_key(call, ANALYSIS),
        )
        digest = hashlib.sha256(prompt.transcript.encode()).hexdigest()
        return PendingJob(
            provider=PROVIDER,
            external_id=job.job_id,
            # As for transcription: the poller times a job out at JOB_TIMEOUT, and the
            # call's hold lasts a little longer, so the reaper steps in only if it never ran.
            wait_until=timezone.now() + jobs.JOB_TIMEOUT + jobs.REAPER_MARGIN,
            record=lambda: jobs.record_job(call, job, input_sha256=digest, retry_of=retry_of),
        )


# --- the adapter's edge: Shunya's result as Otto's schema ---------------------------------


def to_output(found: schemas.AnalysisResult) -> CallAnalysisOutput:
    """Shunya's analysis in Otto's schema: its labels mapped (an objection category or an
    action type Otto does not know is ``other``/``custom``; citations of fields Otto does
    not cite are dropped), then validated; :class:`pydantic.ValidationError` when a value
    cannot be mapped (a missing booking status, an objection with no utterance)."""
    appointment = found.requested_appointment
    data: dict[str, Any] = {
        "summary": found.summary,
        "sentiment": _sentiment(found),
        "intent": found.intent or "",
        "urgency": found.urgency or "normal",
        "qualified": (
            found.qualified
            if found.qualified is not None
            else found.lead_quality in ("hot", "warm")
        ),
        "lead_quality": found.lead_quality,
        "booking_status": found.booking_status,
        "objections": [
            {
                "category": o.category if o.category in CATEGORIES else "other",
                "quote": o.quote,
                "utterance": o.utterance,
                "resolved": o.resolved,
            }
            for o in found.objections
        ],
        "appointment": (
            {
                "time": appointment.time,
                "duration_minutes": appointment.duration_minutes,
                "address": appointment.address,
                "service_type": appointment.service_type,
            }
            if appointment is not None
            else None
        ),
        "customer_name": found.customer_name,
        "service_address": found.service_address,
        "pending_actions": [_action(a) for a in found.pending_actions],
        "coaching_tips": found.coaching_tips,
        # Shunya's analysis suggests no text: messaging drafts from the tenant's template.
        "followup_text": None,
        "sop": (found.sop or schemas.Sop()).model_dump(include={"score", "completed", "missed"}),
        "citations": [
            {"field": c.field, "utterances": c.utterances}
            for c in found.citations
            if c.field in CITED_FIELDS
        ],
    }
    return CallAnalysisOutput.model_validate(data)


def _sentiment(found: schemas.AnalysisResult) -> float:
    if found.sentiment_score is not None:
        return found.sentiment_score
    if isinstance(found.sentiment, float | int):
        return float(found.sentiment)
    return SENTIMENT_SCORES.get(str(found.sentiment or "").lower(), 0.0)


def _action(action: schemas.PendingAction | str) -> dict[str, Any]:
    if isinstance(action, str):
        action = schemas.PendingAction(description=action)
    return {
        "type": action.type if action.type in ACTION_TYPES else "custom",
        "description": action.description,
        "due": action.due,
        "utterance": action.utterance,
    }


def to_result(call: Call, remote: schemas.Job) -> AnalysisResult:
    """A completed job as the analysis stage's result; :class:`ProviderError` (transient:
    the next attempt may well be fine) when it carries nothing Otto can use."""
    where = f"Shunya job {remote.job_id}"
    try:
        found = remote.analysis()
        if found is None:
            raise ProviderError(PROVIDER, f"{where} completed without an analysis", permanent=False)
        output = to_output(found)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        detail = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        raise ProviderError(
            PROVIDER,
            f"{where}: the analysis does not match CallAnalysisOutput ({detail})",
            permanent=False,
        ) from exc
    transcript = Transcript.objects.filter(call=call).first()
    if transcript is None:
        raise ProviderError(PROVIDER, "the call has no transcript", permanent=True)
    # The prompt is rebuilt from the stored transcript: the indices sent are the same.
    prompt = prompt_for(call, transcript)
    usage = found.usage or schemas.Usage()
    return AnalysisResult(
        analyzer=PROVIDER,
        model=found.model or PROVIDER,
        output=output,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        sent=prompt.sent,
        truncated=prompt.truncated,
        request_id=remote.job_id,
    )


# --- completion (webhook or poller), exactly once -----------------------------------------


def held(job: ShunyaJob) -> stages.Claim | None:
    """The claim holding ``job``'s call for it: the call is ``analyzing`` and this is its
    latest analysis job. None when ops moved the call on or a newer job replaced this one:
    its result must not overwrite theirs."""
    call = Call.objects.select_related("company").get(pk=job.call_id)
    newer = ShunyaJob.objects.filter(call_id=job.call_id, job_type=ANALYSIS, pk__gt=job.pk)
    if call.stage != Stage.ANALYZING or call.next_attempt_at is None or newer.exists():
        return None
    return stages.Claim(call, Stage.ANALYZING, call.next_attempt_at)


def apply_job(job: ShunyaJob, remote: schemas.Job) -> str:
    """A completed analysis job: stored as the call's new current analysis once, or its
    attempt failed; the job's status afterwards."""
    claim = held(job)
    call = claim.call if claim is not None else job.call
    try:
        result = to_result(call, remote)
    except ProviderError as exc:
        return _end(job, claim, exc, result=remote.result)
    unknown = check_citations(result.output, result.sent)
    if not unknown:
        return _end(job, claim, result, result=remote.result)
    error = f"citations point at no utterance of the transcript ({', '.join(map(str, unknown))})"
    if job.retry_of_id is not None:
        permanent = ProviderError(PROVIDER, f"{error} after one retry", permanent=True)
        return _end(job, claim, permanent, result=remote.result)
    return _ask_again(job, claim, error, result=remote.result)


def fail_job(job: ShunyaJob, error: str) -> str:
    """A job Shunya failed, no longer knows, or never finished: a failed attempt."""
    return _end(job, held(job), ProviderError(PROVIDER, error, permanent=False))


def _end(
    job: ShunyaJob,
    claim: stages.Claim | None,
    outcome: AnalysisResult | ProviderError,
    *,
    result: Any = None,
) -> str:
    status = Status.COMPLETED if isinstance(outcome, AnalysisResult) else Status.FAILED
    error = str(outcome) if isinstance(outcome, ProviderError) else ""
    settle = functools.partial(jobs.settle_job, job, status, result=result, error=error)
    if claim is not None:
        services.complete_job(claim, outcome, settle=settle)
    else:
        with transaction.atomic():
            if settle():
                logger.warning("Shunya job %s settled, but call %s moved on", job.pk, job.call_id)
    return jobs.job_status(job)


def _ask_again(job: ShunyaJob, claim: stages.Claim | None, error: str, *, result: Any) -> str:
    """End ``job`` rejected and have Shunya asked once more, within the same attempt: the
    call stays ``analyzing`` under a stage-length lease (the reaper takes it back if the
    resubmit is lost) and :func:`resubmit` runs on ``uwc``."""
    from analysis import tasks  # tasks imports this module

    with transaction.atomic():
        if not jobs.settle_job(job, Status.FAILED, result=result, error=f"{error}; asked again"):
            return jobs.job_status(job)
        if claim is not None:
            try:
                claim.extend(timezone.now() + stages.deadline(Stage.ANALYZING), last_error=error)
            except stages.LeaseLost:
                return Status.FAILED
            enqueue(Queue.UWC, tasks.resubmit_shunya_analysis, job.pk)
    logger.info("call %s: Shunya job %s rejected (%s); asked again", job.call_id, job.pk, error)
    return Status.FAILED


def resubmit(rejected_id: int) -> str | None:
    """Submit the analysis again for a job whose citations were rejected; the call's stage
    afterwards, or None when it is not ours any more (moved on, or already resubmitted)."""
    rejected = ShunyaJob.objects.filter(pk=rejected_id, job_type=ANALYSIS).first()
    claim = held(rejected) if rejected is not None else None
    if rejected is None or claim is None:
        return None
    call = claim.call

    def work() -> str:
        transcript = Transcript.objects.filter(call=call).first()
        if transcript is None:
            raise ProviderError(PROVIDER, "the call has no transcript", permanent=True)
        job = ShunyaAnalyzer().submit(call, transcript, retry_of=rejected)
        return services.wait_for_job(claim, job)

    return stages.attempt(claim, work)
