"""Transcription by Shunya on the sandbox: a job submitted on ``uwc``, completed by the
signed webhook or by the poller, whichever comes first, and applied exactly once.

The sandbox's Shunya fetches the recording from the app's own signed link, so these tests
run the app on ``live_server`` (and so commit for real). Its job-complete webhooks are
captured (``outbox``) and posted to ``/webhooks/shunya`` when a test says so; the stand-in
worker runs every enqueued task inline.
"""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone

from calls import shunya, sweeps, transcription
from calls.models import Call, CallStageChange, ShunyaJob, Transcript
from integrations.models import WebhookEvent
from integrations.sandbox.config import CREDENTIALS
from integrations.shunya.signature import sign_shunya
from tests.conftest import wait_for
from tests.integrations.conftest import Outbox
from tests.pipeline.conftest import Stage, make_due, post_shunya, recorded_call, shunya_delivery

SUBMIT = "calls.tasks.submit_transcription"
INDEX = "calls.tasks.index_call"
JobStatus = ShunyaJob.Status


@pytest.fixture
def outbox(sandbox) -> Outbox:
    box = Outbox()
    sandbox.outbound = box
    return box


@pytest.fixture
def shunya_acme(acme, sandbox, outbox, live_server, settings):
    """Acme transcribes with Shunya; the sandbox fetches audio from the live app and its
    jobs are ready at once (their webhooks wait in the outbox)."""
    settings.PUBLIC_BASE_URL = live_server.url
    sandbox.state["shunya"]["delay"] = 0.0
    acme.transcriber = "shunya"
    acme.save()
    return acme


def submit(worker, call: Call) -> ShunyaJob:
    """Run transcription as the queues would: ``asr`` hands the call to ``uwc``."""
    submits = worker.count(SUBMIT)
    with worker.running():
        assert transcription.transcribe_call(call.pk) is None
    assert worker.count(SUBMIT) == submits + 1
    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBING
    return ShunyaJob.objects.get(call=call)


def poll(job: ShunyaJob) -> str | None:
    job.refresh_from_db()
    return shunya.poll_job(job.pk, now=job.next_poll_at)


def transcribed_once(call: Call, worker) -> Transcript:
    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBED
    assert Transcript.objects.filter(call=call).count() == 1
    moves = CallStageChange.objects.filter(call=call, to_stage=Stage.TRANSCRIBED).count()
    assert moves == 1
    assert worker.count(INDEX) == 1  # handed to analysis (search indexing) once
    assert ShunyaJob.objects.get(call=call).status == JobStatus.COMPLETED
    return Transcript.objects.get(call=call)


def test_submit_records_one_job_and_the_call_waits_transcribing(shunya_acme, worker, sandbox):
    call = recorded_call(shunya_acme, "booked")

    job = submit(worker, call)

    call.refresh_from_db()
    assert (job.company_id, job.job_type, job.status) == (
        shunya_acme.pk,
        "transcription",
        "submitted",
    )
    assert job.external_id.startswith("job_") and job.next_poll_at is not None
    assert call.attempts == 1
    # the call's lease now lasts as long as the job may run, and the reaper leaves it alone
    assert call.next_attempt_at - timezone.now() > datetime.timedelta(hours=23)
    later = timezone.now() + datetime.timedelta(hours=2)
    assert sweeps.retry_due_calls(now=later)["reclaimed"] == 0
    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBING
    (request,) = [r for r in sandbox.requests if r["path"] == "/api/v1/transcriptions"]
    assert request["headers"]["idempotency-key"] == f"otto-call-{call.pk}-transcription-0"


def test_webhook_before_the_poll(shunya_acme, worker, outbox, client):
    call = recorded_call(shunya_acme, "booked")
    job = submit(worker, call)
    delivery = shunya_delivery(outbox, job)

    with worker.running():
        response = post_shunya(client, delivery.body, delivery.headers)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "received"

    transcript = transcribed_once(call, worker)
    assert transcript.provider == "shunya" and transcript.request_id == job.external_id
    assert transcript.roles == {"0": "agent", "1": "customer"}
    assert transcript.utterances[0]["text"].startswith("Thanks for calling Acme")
    event = WebhookEvent.objects.get(provider="shunya")
    assert (event.status, event.company_id) == ("processed", shunya_acme.pk)
    assert event.dedupe_key == f"{job.external_id}:job.completed"
    # the poller comes later and finds nothing to do
    assert shunya.poll_job(job.pk, now=timezone.now() + datetime.timedelta(hours=1)) is None
    transcribed_once(call, worker)


def test_poll_before_the_webhook(shunya_acme, worker, outbox, client):
    call = recorded_call(shunya_acme, "card_number")
    job = submit(worker, call)

    with worker.running():
        assert poll(job) == JobStatus.COMPLETED
    first = transcribed_once(call, worker)
    assert "[CARD]" in first.text and "4111" not in first.text

    delivery = shunya_delivery(outbox, job)
    with worker.running():
        assert post_shunya(client, delivery.body, delivery.headers).status_code == 200
    # the late webhook is processed, and applies nothing
    assert WebhookEvent.objects.get(provider="shunya").status == "processed"
    again = transcribed_once(call, worker)
    assert (again.pk, again.updated_at) == (first.pk, first.updated_at)


def test_a_duplicate_webhook_is_acknowledged_and_not_applied_again(
    shunya_acme, worker, outbox, client
):
    call = recorded_call(shunya_acme, "booked")
    job = submit(worker, call)
    delivery = shunya_delivery(outbox, job)

    with worker.running():
        first = post_shunya(client, delivery.body, delivery.headers)
        # a redelivery, freshly signed as Shunya would
        resigned = sign_shunya(delivery.body, str(CREDENTIALS["UWC_HMAC_SECRET"]))
        second = post_shunya(client, delivery.body, resigned)

    assert second.status_code == 200
    assert second.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert WebhookEvent.objects.filter(provider="shunya").count() == 1
    transcribed_once(call, worker)


def test_a_webhook_naming_another_company_is_failed_and_never_applied(
    shunya_acme, globex, worker, outbox, client
):
    call = recorded_call(shunya_acme, "booked")
    job = submit(worker, call)
    payload = json.loads(shunya_delivery(outbox, job).body)
    # acme's job id, signed with the shared secret, claiming to be globex's
    payload["job"]["metadata"][shunya.COMPANY_KEY] = str(globex.pk)
    body = json.dumps(payload).encode()

    with worker.running():
        response = post_shunya(client, body, sign_shunya(body, str(CREDENTIALS["UWC_HMAC_SECRET"])))

    assert response.status_code == 200  # stored for the record, never applied
    event = WebhookEvent.objects.get(provider="shunya")
    assert event.status == "failed" and event.company_id == globex.pk
    assert f"belongs to company {shunya_acme.pk}" in event.last_error
    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBING
    assert not Transcript.objects.filter(call=call).exists()
    job.refresh_from_db()
    assert job.status == JobStatus.SUBMITTED
    # the poller still completes the job for its own company
    with worker.running():
        assert poll(job) == JobStatus.COMPLETED
    transcribed_once(call, worker)


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_stale_or_future_timestamp_is_refused_before_anything_is_stored(
    shunya_acme, worker, outbox, client, skew
):
    call = recorded_call(shunya_acme, "booked")
    job = submit(worker, call)
    body = shunya_delivery(outbox, job).body
    now = timezone.now().timestamp() + skew

    response = post_shunya(
        client, body, sign_shunya(body, str(CREDENTIALS["UWC_HMAC_SECRET"]), now=now)
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBING
    with worker.running():
        assert poll(job) == JobStatus.COMPLETED
    transcribed_once(call, worker)


def test_a_bad_signature_is_refused(shunya_acme, worker, outbox, client):
    call = recorded_call(shunya_acme, "booked")
    job = submit(worker, call)
    body = shunya_delivery(outbox, job).body

    response = post_shunya(client, body, sign_shunya(body, "not-the-secret"))

    assert response.status_code == 401 and not WebhookEvent.objects.exists()


def test_a_job_still_running_after_24_hours_fails_the_call(shunya_acme, worker, sandbox):
    sandbox.state["shunya"]["delay"] = 3600.0  # Shunya never finishes
    call = recorded_call(shunya_acme, "booked")
    job = submit(worker, call)

    # polls back off: 5, 10, 30, 60 s, then every 300 s
    delays = []
    for _ in range(6):
        job.refresh_from_db()
        polled_at = job.next_poll_at
        assert shunya.poll_job(job.pk, now=polled_at) == JobStatus.SUBMITTED
        job.refresh_from_db()
        delays.append((job.next_poll_at - polled_at).total_seconds())
    assert delays == [10, 30, 60, 300, 300, 300]
    assert job.polls == 6

    later = job.created_at + shunya.JOB_TIMEOUT + datetime.timedelta(seconds=1)
    assert shunya.poll_job(job.pk, now=later) == JobStatus.FAILED

    job.refresh_from_db()
    call.refresh_from_db()
    assert job.status == JobStatus.FAILED and "did not complete within 24 h" in job.last_error
    assert call.stage == Stage.FAILED and "did not complete within 24 h" in call.last_error
    assert not Transcript.objects.filter(call=call).exists()


def test_a_submit_that_timed_out_is_retried_without_a_second_job(
    shunya_acme, worker, outbox, client, sandbox, settings
):
    settings.PROVIDER_TIMEOUTS = {**settings.PROVIDER_TIMEOUTS, "shunya": 0.5}
    # Shunya queues the job, but answers only after the client gave up
    sandbox.inject("shunya.transcriptions.create", "timeout", count=1, delay_seconds=1.0)
    call = recorded_call(shunya_acme, "booked")

    with worker.running():
        transcription.transcribe_call(call.pk)
    call.refresh_from_db()
    assert call.stage == Stage.RECORDED and call.next_attempt_at is not None
    assert "shunya" in call.last_error.lower(), call.last_error
    assert not ShunyaJob.objects.exists()
    wait_for(lambda: sandbox.state["shunya"].get("jobs"), timeout=5, interval=0.05)

    make_due(call)
    job = submit(worker, call)  # the retry: same idempotency key, so the same job

    assert len(sandbox.state["shunya"]["jobs"]) == 1
    assert job.external_id in sandbox.state["shunya"]["jobs"]
    call.refresh_from_db()
    assert call.attempts == 2
    delivery = shunya_delivery(outbox, job)
    with worker.running():
        assert post_shunya(client, delivery.body, delivery.headers).status_code == 200
    transcribed_once(call, worker)


def test_a_job_shunya_failed_fails_the_call_with_its_reason(shunya_acme, worker, sandbox):
    call = recorded_call(shunya_acme, audio=b"RIFF not a scenario", scenario="unknown")
    job = submit(worker, call)

    assert poll(job) == JobStatus.FAILED

    call.refresh_from_db()
    assert call.stage == Stage.FAILED and "unsupported_audio" in call.last_error


def test_an_unknown_event_type_is_stored_and_ignored(shunya_acme, worker, client):
    body = json.dumps({"event": "job.started", "job": {"job_id": "job_x"}}).encode()

    with worker.running():
        response = post_shunya(client, body, sign_shunya(body, str(CREDENTIALS["UWC_HMAC_SECRET"])))

    assert response.status_code == 200
    event = WebhookEvent.objects.get(provider="shunya")
    assert (event.event_type, event.status) == ("job.started", "ignored")
