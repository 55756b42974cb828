"""Call tasks. Each takes ids and calls one service (STYLE.md: thin edges); each is safe
to run twice, because the service claims its work first."""

from __future__ import annotations

from calls import search, services, shunya, sweeps, transcription
from otto.models import Company
from otto.queues import Queue, task


@task(unqueued=sweeps.mark_unqueued)
def ingest_call(call_id: int) -> None:
    """Fetch one received call from CallRail, store its recording, hand it on."""
    services.ingest_call(int(call_id))


@task
def refresh_call(call_id: int) -> None:
    """Re-fetch the CallRail details of a call ingest is done with (call.modified)."""
    services.refresh_call(int(call_id))


@task(unqueued=sweeps.mark_unqueued)
def transcribe_call(call_id: int) -> None:
    """Queue ``asr``: transcribe one recorded call, or hand it to the queue its company's
    transcriber runs on."""
    transcription.transcribe_call(int(call_id), queue=Queue.ASR)


@task(unqueued=sweeps.mark_unqueued)
def submit_transcription(call_id: int) -> None:
    """Queue ``uwc``: claim a recorded call and submit it to an asynchronous transcriber."""
    transcription.transcribe_call(int(call_id), queue=Queue.UWC)


@task(unqueued=sweeps.mark_unqueued)
def submit_shunya_transcription(call_id: int) -> None:
    """The former name of :func:`submit_transcription`, kept so tasks already in the
    broker when this version deploys still run."""
    transcription.transcribe_call(int(call_id), queue=Queue.UWC)


@task
def poll_shunya_jobs() -> None:
    """Schedule, every minute: one poll task per Shunya job that is due."""
    shunya.poll_due_jobs()


@task
def poll_shunya_job(job_id: int) -> None:
    """Queue ``shunya``: ask Shunya about one job; apply or fail it once it is done."""
    shunya.poll_job(int(job_id))


@task
def retry_due_calls() -> None:
    """The pipeline reaper (schedule, every minute): re-enqueue due and stuck calls."""
    sweeps.retry_due_calls()


@task
def reconcile_callrail() -> None:
    """One sweeps task per CallRail tenant (schedule, every 15 minutes)."""
    sweeps.reconcile_callrail()


@task
def reconcile_company_calls(company_id: int) -> None:
    """Ingest the tenant's recent calls that no webhook brought in."""
    company = Company.objects.filter(pk=company_id, is_active=True).first()
    if company is not None:
        sweeps.reconcile_company(company)


@task
def index_call(call_id: int) -> None:
    """Queue ``indexing``: recompute the call's full-text search vector (calls.search)."""
    search.index_call(int(call_id))
