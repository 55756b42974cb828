"""Analysis tasks. Each takes ids and calls one service; each is safe to run twice,
because the service claims its call (or its job) first."""

from __future__ import annotations

from analysis import rollup, services, shunya
from calls import sweeps
from otto.queues import Queue, task


@task(unqueued=sweeps.mark_unqueued)
def analyze_call(call_id: int) -> None:
    """Queue ``analysis``: analyse one transcribed call, or hand it to the queue its
    company's analyzer runs on."""
    services.analyze_call(int(call_id))


@task(unqueued=sweeps.mark_unqueued)
def submit_analysis(call_id: int) -> None:
    """Queue ``uwc``: claim a transcribed call and submit it to an asynchronous analyzer."""
    services.analyze_call(int(call_id), queue=Queue.UWC)


@task
def resubmit_shunya_analysis(job_id: int) -> None:
    """Queue ``uwc``: ask Shunya once more for an analysis whose citations it got wrong."""
    shunya.resubmit(int(job_id))


@task
def catch_up_kpi_rollup() -> None:
    """Queue ``default`` (the ``kpi-rollup`` schedule): rebuild the tenants whose KPI rollup
    is not built in their time zone, and recompute every day a change marked."""
    rollup.catch_up()
