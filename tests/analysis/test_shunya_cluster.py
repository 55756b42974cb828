"""Shunya analysis on a real qcluster: the cluster submits the jobs on ``uwc``, applies one
call's result from its signed webhook (posted to a live server) and the other's from a
poll, and the late second arrival of each changes nothing.

The failure paths run in-process in test_shunya.py; this test is about the processes.
"""

from __future__ import annotations

import httpx
import pytest
from django.utils import timezone
from django_q.models import Schedule, Success

from analysis.models import CallAnalysis
from calls import tasks as calls_tasks
from calls.models import Call, CallStageChange, ShunyaJob
from integrations.models import WebhookEvent
from otto.queues import Queue, enqueue
from tests.analysis.conftest import transcribed_call
from tests.analysis.test_shunya import FIELDS
from tests.conftest import wait_for
from tests.integrations.conftest import Outbox
from tests.pipeline.conftest import SHUNYA_URL, shunya_delivery

Stage = Call.Stage
POLL = "calls.tasks.poll_shunya_job"


def deliver(live_server, outbox: Outbox, job: ShunyaJob) -> httpx.Response:
    """The sandbox's signed webhook for ``job``, posted to the live app as Shunya would."""
    delivery = shunya_delivery(outbox, job)
    return httpx.post(live_server.url + SHUNYA_URL, content=delivery.body, headers=delivery.headers)


def analysed(call: Call) -> CallAnalysis | None:
    # (analysed, and its outcomes applied by the cluster: the call ends at done)
    if not Call.objects.filter(pk=call.pk, stage=Stage.DONE).exists():
        return None
    return CallAnalysis.objects.get(call=call, is_current=True)


@pytest.mark.cluster
def test_a_real_cluster_applies_shunya_analysis_once_by_webhook_or_by_poll(
    acme, sandbox, live_server, start_qcluster
):
    # given: Acme analyses with Shunya, whose jobs finish at once and whose webhooks this
    # test delivers; no schedule polls behind the test's back
    Schedule.objects.all().delete()
    outbox = Outbox()
    sandbox.outbound = outbox
    sandbox.state["shunya"]["delay"] = 0.0
    acme.analyzer = "shunya"
    acme.save()
    start_qcluster(SANDBOX_URL=sandbox.url, PUBLIC_BASE_URL=live_server.url)

    # when two calls are transcribed (here), the cluster takes them to analysis on uwc
    by_webhook = transcribed_call(acme, "booked")
    by_poll = transcribed_call(acme, "booked")
    jobs = ShunyaJob.objects.filter(job_type=ShunyaJob.JobType.ANALYSIS)
    wait_for(lambda: jobs.count() == 2, timeout=15, interval=0.1)
    webhook_job, poll_job = (jobs.get(call=by_webhook), jobs.get(call=by_poll))
    assert Call.objects.filter(stage=Stage.ANALYZING).count() == 2

    # one is applied from its webhook
    assert deliver(live_server, outbox, webhook_job).status_code == 200
    first = wait_for(lambda: analysed(by_webhook), timeout=15, interval=0.1)

    # then both jobs are polled, as a late (or redelivered) poll would: the webhook's job
    # is left alone, the other is applied from the poll
    jobs.update(next_poll_at=timezone.now())
    enqueue(Queue.SHUNYA, calls_tasks.poll_shunya_job, webhook_job.pk)
    enqueue(Queue.SHUNYA, calls_tasks.poll_shunya_job, poll_job.pk)
    second = wait_for(lambda: analysed(by_poll), timeout=15, interval=0.1)
    wait_for(lambda: Success.objects.filter(group=POLL).count() == 2, timeout=15, interval=0.1)

    # and the poll-applied job's webhook arrives late
    assert deliver(live_server, outbox, poll_job).status_code == 200
    events = WebhookEvent.objects.filter(provider="shunya")
    wait_for(lambda: set(events.values_list("status", flat=True)) == {"processed"}, timeout=15)

    # then each call has one analysis, applied once, untouched by the late arrival
    assert events.count() == 2
    for call, analysis in ((by_webhook, first), (by_poll, second)):
        assert CallAnalysis.objects.filter(call=call).count() == 1
        assert CallStageChange.objects.filter(call=call, to_stage=Stage.ANALYZED).count() == 1
        assert CallAnalysis.objects.get(pk=analysis.pk).updated_at == analysis.updated_at
    assert set(jobs.values_list("status", flat=True)) == {ShunyaJob.Status.COMPLETED}
    assert len(sandbox.recorded("shunya.analyses.create")) == 2
    # and the webhook and the poller gave the same analysis
    assert {f: getattr(first, f) for f in FIELDS} == {f: getattr(second, f) for f in FIELDS}
    assert first.analyzer == "shunya" and first.booking_status == "booked"
