"""Analysis by Shunya on the sandbox: a job submitted on ``uwc``, completed by the signed
webhook or by the poller, whichever comes first, and applied exactly once.

The calls are transcribed by the sandbox's Deepgram (the analyzer is what is tested); the
sandbox's Shunya answers from the scenario scripts, and its job-complete webhooks are
captured (``outbox``) and posted to ``/webhooks/shunya`` when a test says so. The same
path on a real qcluster is in test_shunya_cluster.py.
"""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone

from analysis import selectors, services
from analysis import shunya as analysis_shunya
from analysis.models import CallAnalysis
from calls import shunya, sweeps
from calls.models import Call, CallStageChange, ShunyaJob
from integrations.models import WebhookEvent
from integrations.sandbox.analysis_rules import SIMULATED_MODEL
from integrations.sandbox.config import CREDENTIALS
from integrations.shunya.signature import sign_shunya
from otto.queues import Queue
from tests.analysis.conftest import transcribed_call
from tests.integrations.conftest import Outbox
from tests.pipeline.conftest import make_due, post_shunya, shunya_delivery

SUBMIT = "analysis.tasks.submit_analysis"
RESUBMIT = "analysis.tasks.resubmit_shunya_analysis"
Stage = Call.Stage
JobStatus = ShunyaJob.Status
# What a manager reads: the same whichever of the webhook and the poller applied it.
FIELDS = ("analyzer", "model", *selectors.FIELDS, "citations", "input_tokens", "output_tokens")


@pytest.fixture
def outbox(sandbox) -> Outbox:
    box = Outbox()
    sandbox.outbound = box
    return box


@pytest.fixture
def shunya_acme(acme, sandbox, outbox):
    """Acme analyses with Shunya; the sandbox's jobs are ready at once (their webhooks
    wait in the outbox)."""
    sandbox.state["shunya"]["delay"] = 0.0
    acme.analyzer = "shunya"
    acme.save()
    return acme


def submit(call: Call) -> ShunyaJob:
    """The ``uwc`` task's work: claim the call and submit its analysis job."""
    assert services.analyze_call(call.pk, queue=Queue.UWC) == Stage.ANALYZING
    call.refresh_from_db()
    assert call.stage == Stage.ANALYZING
    return ShunyaJob.objects.filter(call=call, job_type="analysis").latest("pk")


def signed(payload: dict) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, sign_shunya(body, str(CREDENTIALS["UWC_HMAC_SECRET"]))


def poll(job: ShunyaJob) -> str | None:
    job.refresh_from_db()
    return shunya.poll_job(job.pk, now=job.next_poll_at)


def analysed_once(call: Call) -> CallAnalysis:
    call.refresh_from_db()
    # (analysed; where the test runs the tasks, its outcomes are applied too: done)
    assert call.stage in (Stage.ANALYZED, Stage.DONE) and call.next_attempt_at is None
    assert CallAnalysis.objects.filter(call=call).count() == 1
    assert CallStageChange.objects.filter(call=call, to_stage=Stage.ANALYZED).count() == 1
    return CallAnalysis.objects.get(call=call, is_current=True)


def facts(analysis: CallAnalysis) -> dict:
    return {name: getattr(analysis, name) for name in FIELDS}


# --- submit ----------------------------------------------------------------------------


def test_the_analysis_queue_hands_a_shunya_call_to_uwc(shunya_acme, run_tasks):
    call = transcribed_call(shunya_acme, "booked")

    with run_tasks() as worker:
        worker.held = {SUBMIT}
        assert services.analyze_call(call.pk) is None

    assert worker.pushed == [("uwc", SUBMIT, (call.pk,))]
    call.refresh_from_db()
    assert (call.stage, call.attempts) == (Stage.TRANSCRIBED, 0)


def test_submit_sends_the_redacted_numbered_transcript_and_the_call_waits(shunya_acme, sandbox):
    call = transcribed_call(shunya_acme, "card_number")

    job = submit(call)

    call.refresh_from_db()
    assert (job.company_id, job.status, job.retry_of) == (shunya_acme.pk, "submitted", None)
    assert call.attempts == 1
    # held as long as the job may run: the reaper leaves it to the poller
    assert call.next_attempt_at - timezone.now() > datetime.timedelta(hours=23)
    later = timezone.now() + datetime.timedelta(hours=2)
    assert sweeps.retry_due_calls(now=later)["reclaimed"] == 0
    (request,) = sandbox.recorded("shunya.analyses.create")
    assert request["headers"]["idempotency-key"] == f"otto-call-{call.pk}-analysis-0"
    body = json.loads(request["body"])
    assert body["transcript"].splitlines()[0] == "[0] agent: Acme Heating and Air, this is Maria."
    assert "[CARD]" in request["body"] and "4111" not in request["body"]
    assert body["utterances"][1]["index"] == 1 and body["utterances"][1]["role"] == "customer"
    assert body["metadata"][shunya.COMPANY_KEY] == str(shunya_acme.pk)
    assert sandbox.recorded("openai") == []


# --- completion: webhook or poller, once ---------------------------------------------------


def test_the_webhook_and_the_poller_apply_the_same_analysis_once(
    shunya_acme, outbox, client, run_tasks
):
    by_webhook = transcribed_call(shunya_acme, "booked")
    by_poll = transcribed_call(shunya_acme, "booked")
    webhook_job, poll_job = submit(by_webhook), submit(by_poll)

    # one call completed by its webhook, then polled
    delivery = shunya_delivery(outbox, webhook_job)
    with run_tasks():
        response = post_shunya(client, delivery.body, delivery.headers)
    assert response.status_code == 200, response.content
    first = analysed_once(by_webhook)
    assert shunya.poll_job(webhook_job.pk, now=timezone.now() + datetime.timedelta(hours=1)) is None

    # the other completed by the poller, then its webhook arrives
    with run_tasks():
        assert poll(poll_job) == JobStatus.COMPLETED
    second = analysed_once(by_poll)
    late = shunya_delivery(outbox, poll_job)
    with run_tasks():
        assert post_shunya(client, late.body, late.headers).status_code == 200

    # then both late arrivals were processed and changed nothing
    events = WebhookEvent.objects.filter(provider="shunya")
    assert sorted(events.values_list("status", flat=True)) == ["processed", "processed"]
    for call, analysis in ((by_webhook, first), (by_poll, second)):
        again = analysed_once(call)
        assert (again.pk, again.updated_at) == (analysis.pk, analysis.updated_at)
    assert set(ShunyaJob.objects.values_list("status", flat=True)) == {JobStatus.COMPLETED}
    # and both paths give the same analysis
    assert facts(first) == facts(second)
    # read from the scenario's script: Dana books "tomorrow at 9 am" at 1420 Maple Street
    # on a Friday 16:40 New York call, and raises no objection
    assert (first.analyzer, first.model) == ("shunya", SIMULATED_MODEL)
    assert first.booking_status == "booked" and first.objections == []
    assert first.appointment["start"] == "2026-03-07T09:00:00-05:00"
    assert first.service_address == "1420 Maple Street"
    assert first.qualified is True and first.lead_quality == "hot"
    assert first.request_id == webhook_job.external_id
    assert first.input_tokens > 0 and "Simulated" in first.summary
    utterances = by_webhook.transcript.utterances
    assert {"booking_status", "appointment", "service_address"} <= set(first.citations)
    assert "tomorrow at 9 am" in utterances[first.citations["appointment"][-1]]["text"]


def test_objections_are_mapped_onto_the_taxonomy_with_their_utterance(shunya_acme, outbox):
    call = transcribed_call(shunya_acme, "price_objection")
    job = submit(call)

    assert poll(job) == JobStatus.COMPLETED

    analysis = analysed_once(call)
    assert analysis.booking_status == "not_booked"
    categories = {o["category"] for o in analysis.objections}
    assert "price" in categories and categories <= analysis_shunya.CATEGORIES
    for objection in analysis.objections:
        said = call.transcript.utterances[objection["utterance"]]
        assert said["role"] == "customer" and objection["quote"] == said["text"]
    assert {a["type"] for a in analysis.pending_actions} <= analysis_shunya.ACTION_TYPES


def test_a_webhook_for_another_tenants_job_is_never_applied(
    shunya_acme, globex, outbox, client, run_tasks
):
    call = transcribed_call(shunya_acme, "booked")
    job = submit(call)
    payload = json.loads(shunya_delivery(outbox, job).body)
    # acme's job id, signed with the shared secret, claiming to be globex's
    payload["job"]["metadata"][shunya.COMPANY_KEY] = str(globex.pk)

    with run_tasks():
        response = post_shunya(client, *signed(payload))

    assert response.status_code == 200  # stored for the record, never applied
    event = WebhookEvent.objects.get(provider="shunya")
    assert event.status == "failed" and event.company_id == globex.pk
    assert f"belongs to company {shunya_acme.pk}" in event.last_error
    call.refresh_from_db()
    assert call.stage == Stage.ANALYZING
    assert not CallAnalysis.objects.exists()
    job.refresh_from_db()
    assert job.status == JobStatus.SUBMITTED
    # the poller still completes the job for its own company
    assert poll(job) == JobStatus.COMPLETED
    assert analysed_once(call).company_id == shunya_acme.pk


def test_a_bad_signature_is_refused_before_anything_is_stored(shunya_acme, outbox, client):
    call = transcribed_call(shunya_acme, "booked")
    job = submit(call)
    body = shunya_delivery(outbox, job).body

    response = post_shunya(client, body, sign_shunya(body, "not-the-secret"))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
    call.refresh_from_db()
    assert call.stage == Stage.ANALYZING and not CallAnalysis.objects.exists()


# --- failures count as attempts -------------------------------------------------------------


def test_a_job_shunya_failed_is_a_failed_attempt_and_the_retry_is_a_new_job(
    shunya_acme, outbox, client, run_tasks
):
    call = transcribed_call(shunya_acme, "booked")
    job = submit(call)
    payload = json.loads(shunya_delivery(outbox, job).body)
    payload["event"] = "job.failed"
    payload["job"].update(
        status="failed", result=None, error={"code": "overloaded", "message": "try later"}
    )

    with run_tasks():
        assert post_shunya(client, *signed(payload)).status_code == 200

    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBED and call.attempts == 1
    assert call.next_attempt_at > timezone.now()
    assert "overloaded: try later" in call.last_error
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    # due again: a new job (a new idempotency key), completed this time
    make_due(call)
    retry = submit(call)
    assert retry.pk != job.pk and retry.external_id != job.external_id
    assert poll(retry) == JobStatus.COMPLETED
    assert analysed_once(call).booking_status == "booked"


def test_a_result_that_breaks_the_schema_counts_as_an_attempt(
    shunya_acme, outbox, client, run_tasks, settings
):
    settings.PIPELINE_MAX_ATTEMPTS = 1
    call = transcribed_call(shunya_acme, "booked")
    job = submit(call)
    payload = json.loads(shunya_delivery(outbox, job).body)
    payload["job"]["result"]["booking_status"] = "maybe"

    with run_tasks():
        assert post_shunya(client, *signed(payload)).status_code == 200

    call.refresh_from_db()
    assert call.stage == Stage.FAILED  # its one attempt used
    assert "does not match CallAnalysisOutput (booking_status" in call.last_error
    assert not CallAnalysis.objects.exists()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.output_sha256


def test_citations_of_missing_utterances_are_asked_again_once_then_fail(
    shunya_acme, monkeypatch, run_tasks
):
    monkeypatch.setattr(analysis_shunya, "check_citations", lambda output, sent: [999])
    call = transcribed_call(shunya_acme, "booked")
    first = submit(call)

    # the first answer is rejected: the call stays analyzing and Shunya is asked again
    with run_tasks() as worker:
        assert poll(first) == JobStatus.FAILED
    assert ("uwc", RESUBMIT, (first.pk,)) in worker.pushed
    call.refresh_from_db()
    assert call.stage == Stage.ANALYZING and call.attempts == 1
    retry = ShunyaJob.objects.get(retry_of=first)
    assert retry.external_id != first.external_id
    first.refresh_from_db()
    assert "citations point at no utterance" in first.last_error
    # a redelivered resubmit task finds the retry already there
    assert analysis_shunya.resubmit(first.pk) is None

    # the second answer is rejected too: the call fails, visibly, with nothing stored
    assert poll(retry) == JobStatus.FAILED
    call.refresh_from_db()
    assert call.stage == Stage.FAILED
    assert "999" in call.last_error and "after one retry" in call.last_error
    assert not CallAnalysis.objects.exists()


def test_a_retry_with_good_citations_is_stored(shunya_acme, monkeypatch, run_tasks):
    answers = iter([[999], []])
    monkeypatch.setattr(analysis_shunya, "check_citations", lambda output, sent: next(answers))
    call = transcribed_call(shunya_acme, "booked")
    first = submit(call)

    with run_tasks():
        poll(first)
    assert poll(ShunyaJob.objects.get(retry_of=first)) == JobStatus.COMPLETED

    assert analysed_once(call).booking_status == "booked"


@pytest.mark.parametrize(("mode", "count"), [("429", 2), ("500", 1), ("timeout", 1)])
def test_a_submit_429_5xx_or_timeout_backs_off_at_transcribed(shunya_acme, sandbox, mode, count):
    call = transcribed_call(shunya_acme, "booked")
    sandbox.inject("shunya.analyses.create", mode, count=count, delay_seconds=3)

    assert services.analyze_call(call.pk, queue=Queue.UWC) == Stage.TRANSCRIBED

    call.refresh_from_db()
    assert call.attempts == 1 and call.next_attempt_at > timezone.now()
    assert call.last_error.startswith("shunya:")
    make_due(call)
    job = submit(call)
    assert poll(job) == JobStatus.COMPLETED
    analysed_once(call)


def test_a_job_still_running_after_24_hours_is_a_failed_attempt(shunya_acme, sandbox):
    sandbox.state["shunya"]["delay"] = 3600.0  # Shunya never finishes
    call = transcribed_call(shunya_acme, "booked")
    job = submit(call)

    later = job.created_at + shunya.JOB_TIMEOUT + datetime.timedelta(seconds=1)
    assert shunya.poll_job(job.pk, now=later) == JobStatus.FAILED

    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBED and "did not complete within 24 h" in call.last_error


def test_a_result_for_a_call_ops_moved_on_is_not_applied(shunya_acme, outbox):
    call = transcribed_call(shunya_acme, "booked")
    job = submit(call)
    Call.objects.filter(pk=call.pk).update(stage=Stage.FAILED)

    assert poll(job) == JobStatus.COMPLETED

    call.refresh_from_db()
    assert call.stage == Stage.FAILED and not CallAnalysis.objects.exists()


def test_shunya_without_credentials_parks_the_call(shunya_acme, sandbox, settings):
    settings.UWC_JWT_SECRET = settings.UWC_API_KEY = ""
    call = transcribed_call(shunya_acme, "booked")

    assert services.analyze_call(call.pk, queue=Queue.UWC) == Stage.TRANSCRIBED

    call.refresh_from_db()
    assert call.attempts == 0 and "Shunya (UWC) is not configured" in call.stage_reason
    assert sandbox.recorded("shunya") == []
