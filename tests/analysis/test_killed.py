"""A worker SIGKILLed while OpenAI holds its request: the call still ends with exactly one
current analysis, made by the worker that took it over (a real qcluster, not in-process)."""

from __future__ import annotations

import datetime
import os
import signal

import pytest
from django.conf import settings
from django.utils import timezone

from analysis.models import CallAnalysis
from calls import sweeps
from calls.models import Call, CallStageChange
from tests.analysis.conftest import transcribed_call
from tests.conftest import wait_for

Stage = Call.Stage
SECOND = datetime.timedelta(seconds=1)


@pytest.mark.cluster
def test_a_worker_killed_mid_openai_call_still_ends_with_one_current_analysis(
    acme, sandbox, start_qcluster
):
    # given a real cluster and an OpenAI that holds the first request open
    sandbox.inject("openai.responses", "latency", count=1, delay_seconds=60)
    first = start_qcluster(SANDBOX_URL=sandbox.url)

    # when a transcribed call is handed to analysis (autocommit: pushed at once) and the
    # cluster is killed while OpenAI holds the request
    call = transcribed_call(acme, "booked")
    wait_for(lambda: sandbox.recorded("openai.responses"), timeout=30)
    assert Call.objects.get(pk=call.pk).stage == Stage.ANALYZING
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait()

    # and the reaper runs once the claim's lease has passed
    lease = datetime.timedelta(seconds=settings.PIPELINE_STAGE_DEADLINES["analyzing"])
    Call.objects.filter(pk=call.pk).update(
        stage_changed_at=timezone.now() - lease - SECOND, next_attempt_at=timezone.now() - SECOND
    )
    assert sweeps.retry_due_calls()["reclaimed"] == 1
    start_qcluster(SANDBOX_URL=sandbox.url)

    # then a new cluster analyses it (and applies its outcomes), with one analysis, current,
    # made on the second claim
    wait_for(lambda: Call.objects.get(pk=call.pk).stage == Stage.DONE, timeout=60)
    assert list(CallAnalysis.objects.filter(call=call).values_list("version", "is_current")) == [
        (1, True)
    ]
    assert CallStageChange.objects.filter(call=call, to_stage=Stage.ANALYZING).count() == 2
    assert len(sandbox.recorded("openai.responses")) == 2
