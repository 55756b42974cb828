"""Analysis: from a ``transcribed`` call's redacted transcript to its current CallAnalysis.

The stages it owns (docs/analysis.md, docs/operations.md "Stages"):

- ``transcribed`` → ``analyzing``: :func:`analyze_call` claims the call through
  :func:`calls.stages.claim` (lease ``PIPELINE_STAGE_DEADLINES["analyzing"]``), so a
  redelivered task finds it taken and does nothing, and the reaper takes it back from a
  worker that died.
- The company's analyzer (:func:`analysis.analyzers.analyzer_for`) is submitted the call
  with no transaction open, on the queue it names (Shunya's submit runs on ``uwc``). A
  pending job holds the call ``analyzing`` until its webhook or poller completes it
  through :func:`complete_job`.
- ``analyzing`` → ``analyzed``: the result is stored as the next version and made current,
  in one transaction with the move, only while the claim still holds. A worker the reaper
  presumed dead therefore writes nothing, and the partial unique constraint
  ``analysis_one_current_per_call`` is the last guard against two current analyses.
- An analyzer that cannot run for the company (no key configured) parks the
  call at ``transcribed`` with the reason and looks again after :data:`PARK_RECHECK`,
  with no error per call. So does a company whose monthly budget is spent
  (:func:`check_budget`).
"""

from __future__ import annotations

import datetime
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from analysis import selectors
from analysis.analyzers import (
    AnalysisResult,
    Analyzer,
    AnalyzerNotAvailable,
    UnusableAnswer,
    analyzer_for,
)
from analysis.models import AnalysisFailure, CallAnalysis, Reanalysis
from analysis.pipeline import start_analysis
from analysis.pricing import cost_usd
from analysis.prompt import PROMPT_VERSION
from analysis.when import resolve_appointment
from calls import pipeline, stages
from calls.models import Call, Transcript
from calls.providers import PendingJob
from integrations.errors import ProviderError
from otto import audit
from otto.models import AuditAction, Company, User
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

Stage = Call.Stage
# A parked call is looked at again this often (a key added, a budget renewed).
PARK_RECHECK = datetime.timedelta(hours=1)

# A follow-up text longer than this is cut (two SMS segments).
FOLLOWUP_TEXT_MAX = 320

# Fields people may correct (PATCH calls/{id}/analysis/), with the type each value takes.
OVERRIDABLE: dict[str, Any] = {
    "summary": str,
    "sentiment": float,
    "intent": str,
    "urgency": str,
    "qualified": bool,
    "lead_quality": str,
    "booking_status": str,
    "objections": list,
    "appointment": dict,
    "customer_name": str,
    "service_address": str,
    "pending_actions": list,
    "coaching_tips": list,
    "followup_text": str,
    "sop": dict,
}


def analyze_call(call_id: int, *, queue: Queue = Queue.ANALYSIS) -> str | None:
    """Analyse one ``transcribed`` call on ``queue`` (the queue this task runs on); its
    stage afterwards, or None if it was not ours (not ``transcribed``, not due, claimed by
    another worker, or handed to the queue its analyzer runs on)."""
    from analysis import tasks  # tasks imports this module

    call = Call.objects.select_related("company").filter(pk=call_id).first()
    if call is None or call.stage != Stage.TRANSCRIBED:
        return None
    try:
        analyzer = check_analyzable(call.company)
    except AnalysisWaits as exc:
        return park_call(call, str(exc))
    if analyzer.queue != queue:
        enqueue(analyzer.queue, tasks.submit_analysis, call.pk)
        return None
    claim = stages.claim(call, Stage.ANALYZING)
    if claim is None:
        logger.info("call %s is not due for analysis; skipped", call_id)
        return None

    def work() -> str:
        transcript = Transcript.objects.filter(call=call).first()
        if transcript is None:
            raise ProviderError(analyzer.name, "the call has no transcript", permanent=True)
        try:
            outcome = analyzer.submit(call, transcript)
        except UnusableAnswer as exc:
            record_failure(call, exc)
            raise
        if isinstance(outcome, PendingJob):
            return wait_for_job(claim, outcome)
        return record_analysis(claim, outcome)

    return stages.attempt(claim, work)


class AnalysisWaits(Exception):
    """The company's calls cannot be analysed now; the message says why (they park)."""


def check_analyzable(company: Company) -> Analyzer:
    """The company's analyzer, or :class:`AnalysisWaits` when its calls must wait (no
    analyzer Otto knows, no key)."""
    try:
        analyzer = analyzer_for(company)
    except AnalyzerNotAvailable as exc:
        raise AnalysisWaits(str(exc)) from None
    reason = analyzer.check_ready(company)
    if reason is not None:
        raise AnalysisWaits(reason)
    check_budget(company)
    return analyzer


def check_budget(company: Company) -> None:
    """:class:`AnalysisWaits` once the company's analyses this calendar month (its time
    zone) have cost its monthly budget (:func:`analysis.selectors.monthly_budget`)."""
    budget = selectors.monthly_budget(company)
    if budget is None:
        return
    spent = selectors.month_spend(company)
    if spent >= budget:
        raise AnalysisWaits(
            f"the monthly analysis budget of ${budget} is spent (${spent:.2f} this month); "
            "analysis waits for next month or a higher budget"
        )


def wait_for_job(claim: stages.Claim, job: PendingJob) -> str:
    """Hold the claimed call ``analyzing`` until the provider's job is done, and record
    the job, in one transaction; :class:`calls.stages.LeaseLost` if the claim was lost."""
    with transaction.atomic():
        claim.extend(job.wait_until, last_error="")
        job.record()
    logger.info("call %s: %s job %s submitted", claim.call.pk, job.provider, job.external_id)
    return Stage.ANALYZING


def complete_job(
    claim: stages.Claim, outcome: AnalysisResult | ProviderError, *, settle: Callable[[], bool]
) -> str | None:
    """Finish an analysis a provider completed later (its webhook or its poller), under
    the claim that holds the call: store the result, or count the failed attempt (back to
    ``transcribed`` with a backoff, or ``failed``), in one transaction with ``settle``,
    the provider's compare-and-set on its job. The call's stage afterwards; None when
    ``settle`` lost (another completion got there first) or the claim no longer holds,
    and then nothing of the call is written."""
    with transaction.atomic():
        if not settle():
            return None
        if isinstance(outcome, ProviderError):
            return stages.retry_or_fail(claim.rows(), claim.call, outcome, back_to=claim.waiting)
        try:
            return record_analysis(claim, outcome)
        except stages.LeaseLost:
            logger.warning("call %s moved on: its finished analysis is not applied", claim.call.pk)
            return None


def park_call(call: Call, reason: str) -> str:
    """Leave a call at ``transcribed`` with ``reason``, due again after PARK_RECHECK. The
    first park is a stage change (history, a log line); rechecks only move the date."""
    waiting = Call.objects.filter(pk=call.pk, stage=Stage.TRANSCRIBED)
    later = timezone.now() + PARK_RECHECK
    if call.stage_reason == reason[:200]:
        waiting.update(next_attempt_at=later)
    elif stages.move(waiting, call, Stage.TRANSCRIBED, reason=reason, next_attempt_at=later):
        logger.info("call %s waits at transcribed: %s", call.pk, reason)
    return Stage.TRANSCRIBED


def record_failure(call: Call, exc: UnusableAnswer) -> AnalysisFailure:
    """Keep an answer that could not be stored, with what it cost (the budget counts it),
    whether or not this worker still holds the call: the provider billed it either way."""
    return AnalysisFailure.objects.create(
        company_id=call.company_id,
        call=call,
        analyzer=exc.provider,
        model=exc.model[:100],
        error=exc.detail,
        input_tokens=exc.input_tokens,
        output_tokens=exc.output_tokens,
        cost_usd=cost_usd(exc.model, exc.input_tokens, exc.output_tokens)
        if exc.input_tokens or exc.output_tokens
        else 0,
    )


def analysis_fields(call: Call, result: AnalysisResult) -> dict[str, Any]:
    """The CallAnalysis fields of a validated result: clamped, appointment resolved
    against the call's start in the tenant's zone, citations as {field: [indices]}."""
    out = result.output
    appointment = None
    if out.appointment is not None:
        start, end = resolve_appointment(
            out.appointment.time,
            call_started_at=call.started_at or call.created_at,
            timezone=call.company.timezone,
            duration_minutes=out.appointment.duration_minutes,
        )
        appointment = {
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
            "address": out.appointment.address,
            "service_type": out.appointment.service_type,
            # As the model reported it, for anyone checking the resolution.
            "requested": out.appointment.time,
        }
    citations: dict[str, list[int]] = {}
    for citation in out.citations:
        merged = set(citations.get(citation.field, [])) | set(citation.utterances)
        citations[citation.field] = sorted(merged)
    return {
        "analyzer": result.analyzer,
        "model": result.model[:100],
        "prompt_version": PROMPT_VERSION,
        "request_id": result.request_id[:100],
        "summary": out.summary,
        "sentiment": max(-1.0, min(1.0, out.sentiment)),
        "intent": out.intent[:100],
        "urgency": out.urgency,
        "qualified": out.qualified,
        "lead_quality": out.lead_quality,
        "booking_status": out.booking_status,
        "objections": [o.model_dump() for o in out.objections],
        "appointment": appointment,
        "customer_name": (out.customer_name or "")[:200],
        "service_address": (out.service_address or "")[:300],
        "pending_actions": [a.model_dump() for a in out.pending_actions],
        "coaching_tips": list(out.coaching_tips),
        "followup_text": (out.followup_text or "").strip()[:FOLLOWUP_TEXT_MAX],
        "sop": {**out.sop.model_dump(), "score": max(0, min(100, out.sop.score))},
        "citations": citations,
        "transcript_truncated": result.truncated,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost_usd": cost_usd(result.model, result.input_tokens, result.output_tokens),
    }


def record_analysis(claim: stages.Claim, result: AnalysisResult) -> str:
    """Store a finished analysis of a claimed call as its new current version and move it
    to ``analyzed``; :class:`calls.stages.LeaseLost` (nothing written) when the claim no
    longer holds."""
    call = claim.call
    fields = analysis_fields(call, result)
    with transaction.atomic():
        if not stages.move(claim.rows(), call, Stage.ANALYZED, next_attempt_at=None, last_error=""):
            raise stages.LeaseLost
        analysis = add_version(call, fields)
        handler = pipeline.handoff_for(Stage.ANALYZED)
        if handler is not None:
            handler(call)
    logger.info("call %s analysed (version %s)", call.pk, analysis.version)
    return Stage.ANALYZED


def add_version(call: Call, fields: dict[str, Any]) -> CallAnalysis:
    """The call's next analysis version, made current; people's overrides carry over.
    Run inside a transaction (the current row is locked while it is replaced)."""
    current = CallAnalysis.objects.select_for_update().filter(call=call, is_current=True).first()
    overrides = dict(current.overrides) if current else {}
    if current is not None:
        CallAnalysis.objects.filter(pk=current.pk).update(is_current=False)
    latest = CallAnalysis.objects.filter(call=call).aggregate(v=Max("version"))["v"] or 0
    return CallAnalysis.objects.create(
        company_id=call.company_id,
        call=call,
        version=latest + 1,
        is_current=True,
        overrides=overrides,
        **fields,
    )


def update_overrides(
    company: Company, analysis: CallAnalysis, changes: dict[str, Any], *, user: User
) -> CallAnalysis:
    """Merge people's corrections into the current analysis (a null value removes one).
    ``changes`` is already validated (:class:`analysis.serializers.OverridesSerializer`)."""
    with transaction.atomic():
        row = CallAnalysis.objects.select_for_update().get(
            pk=analysis.pk, company=company, is_current=True
        )
        overrides = dict(row.overrides)
        for name, value in changes.items():
            if value is None:
                overrides.pop(name, None)
            else:
                overrides[name] = value
        row.overrides = overrides
        row.save(update_fields=["overrides", "updated_at"])
    logger.info(
        "analysis %s of call %s corrected by user %s: %s",
        row.pk,
        row.call_id,
        user.pk,
        ", ".join(sorted(changes)),
    )
    return row


# --- re-analysis: manage.py reanalyze and the admin's re-run ------------------------------

# A call is sent back into analysis from these stages; one waiting at ``transcribed``
# (parked, backing off) is made due at once.
RERUN_FROM = (*selectors.REANALYZABLE, Stage.FAILED, Stage.TRANSCRIBED)
# What became of each call of a reanalyze pass.
ANALYSED, WAITING, FAILED, SKIPPED = "analysed", "waiting", "failed", "skipped"
_OUTCOMES: dict[str, str] = {Stage.ANALYZED: ANALYSED, Stage.FAILED: FAILED}

Progress = Callable[[Counter[str], int], None]


class ReanalysisRefused(Exception):
    """This call cannot be re-analysed now; the message says why."""


def reanalyze_call(
    call: Call, *, actor: Any = None, reason: str = "", run_now: bool = False
) -> str | None:
    """Send ``call`` back into analysis for a new version (people's overrides carry over),
    handed on again at ``analyzed`` so what follows (outcomes) is brought up to date.

    One compare-and-set from the stage the call was seen in back to ``transcribed``, with
    its attempts reset, audited as a :class:`~calls.models.CallStageChange` with ``actor``
    and ``reason``. From there the analysis stage claims it like any call
    (:func:`calls.stages.claim`), so a re-run racing the pipeline, or another re-run,
    analyses it once. ``run_now`` analyses it in this process (``manage.py reanalyze``)
    and returns what :func:`analyze_call` returns; otherwise its task is enqueued on queue
    ``analysis`` and ``transcribed`` is returned.

    Raises :class:`AnalysisWaits` (nothing moved) when the company's calls would only park
    (no key, budget spent), and :class:`ReanalysisRefused` when this call cannot be re-run.
    """
    check_analyzable(call.company)
    if call.stage not in RERUN_FROM:
        raise ReanalysisRefused(
            f"the call is {call.stage}; only analysed, failed or waiting calls are re-analysed"
        )
    if not Transcript.objects.filter(call=call).exists():
        raise ReanalysisRefused("the call has no transcript")
    if Transcript.objects.filter(call=call, purged_at__isnull=False).exists():
        raise ReanalysisRefused("the call's transcript was deleted under the retention policy")
    with transaction.atomic():
        moved = stages.move(
            Call.objects.filter(stage=call.stage),
            call,
            Stage.TRANSCRIBED,
            reason=reason or "re-analysis requested",
            actor=actor,
            attempts=0,
            next_attempt_at=None,
            last_error="",
        )
        if not moved:
            raise ReanalysisRefused("the call changed stage meanwhile; reload it and try again")
        if actor is not None:
            # A person's re-run (ops in the admin); a command's pass is its Reanalysis row.
            audit.record(
                AuditAction.CALL_REANALYZED,
                company=call.company,
                actor=actor,
                target_type="call",
                target_id=call.pk,
            )
        if not run_now:
            start_analysis(call)
    if not run_now:
        return Stage.TRANSCRIBED
    return analyze_call(call.pk)


def reanalyze_calls(
    company: Company,
    *,
    since: datetime.date,
    until: datetime.date,
    prompt_version: str = "",
    dry_run: bool = False,
    counts: Counter[str] | None = None,
    progress: Progress | None = None,
) -> Counter[str]:
    """Re-analyse the company's calls of ``since`` … ``until``
    (:func:`analysis.selectors.reanalysis_candidates`), one at a time, oldest first; the
    counts of calls analysed, left waiting (a transient failure backing off, a provider
    job, a worker that took the call first: the pipeline finishes them), failed and
    skipped (moved meanwhile). ``prompt_version`` (which must be this code's
    :data:`PROMPT_VERSION`) leaves out calls already analysed with it. ``dry_run`` counts
    the calls (``counts["selected"]``) and writes nothing.

    **Resuming.** The pass is a :class:`~analysis.models.Reanalysis` row, open until it
    finishes; a call whose current analysis was made since the pass started is done. So
    the same command run again after an interruption (Ctrl-C, a crash, the budget running
    out: :class:`AnalysisWaits` is raised) carries on with the calls not done yet, and run
    once more after it finished starts a new pass.
    """
    check_reanalysis(company, prompt_version)
    counts = Counter() if counts is None else counts
    run = None
    if not dry_run:
        run, _ = Reanalysis.objects.get_or_create(
            company=company,
            since=since,
            until=until,
            prompt_version=prompt_version,
            finished_at=None,
        )
    ids = list(
        selectors.reanalysis_candidates(
            company,
            since=since,
            until=until,
            other_prompt_than=prompt_version,
            analysed_before=run.started_at if run else None,
        ).values_list("pk", flat=True)
    )
    if run is None:
        counts["selected"] = len(ids)
        return counts
    if progress is not None:
        progress(counts, len(ids))
    reason = f"re-analysis (manage.py reanalyze {since}…{until})"
    for call_id in ids:
        # Loaded one at a time: a long pass must see each call's stage as it is now.
        call = Call.objects.select_related("company").filter(pk=call_id).first()
        counts[_reanalyze_one(call, reason) if call else SKIPPED] += 1
        if progress is not None:
            progress(counts, len(ids))
    run.finished_at = timezone.now()
    run.save(update_fields=["finished_at", "updated_at"])
    return counts


def _reanalyze_one(call: Call, reason: str) -> str:
    try:
        stage = reanalyze_call(call, reason=reason, run_now=True)
    except ReanalysisRefused:
        return SKIPPED
    return _OUTCOMES.get(stage or "", WAITING)


def check_reanalysis(company: Company, prompt_version: str = "") -> None:
    """Refuse a reanalyze pass that could not analyse anything: the company's calls would
    park (:class:`AnalysisWaits`), or ``prompt_version`` is not the one this code sends
    (:class:`ReanalysisRefused`: Otto can only analyse with its current prompt)."""
    if prompt_version and prompt_version != PROMPT_VERSION:
        raise ReanalysisRefused(
            f"this deployment analyses with prompt version {PROMPT_VERSION!r}, "
            f"not {prompt_version!r}"
        )
    check_analyzable(company)
