"""Concurrent deliveries against a live server (real threads, real transactions): one call,
one contact, one hand-off to transcription, whoever wins the races."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection

from calls import sweeps
from calls.models import Call
from integrations.callrail.signature import sign_callrail
from integrations.models import WebhookEvent
from integrations.sandbox.providers.callrail import post_call_body
from otto.models import Contact
from tests.calls.conftest import ACME_KEY, INGEST, TRANSCRIBE, make_calls, sandbox_call

Stage = Call.Stage
EARLIER_TODAY = 0.2  # days: old enough for sweeps to list the call


def signed_webhook(sandbox, call_id: str, *, numeric_only: bool = False) -> tuple[bytes, dict]:
    """The post-call webhook the sandbox's CallRail would send for ``call_id``."""
    payload = json.loads(post_call_body(sandbox_call(sandbox, call_id)))
    if numeric_only:
        del payload["resource_id"]  # only the legacy numeric id names the call
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", "Signature": sign_callrail(body, ACME_KEY)}


def together(*jobs):
    """Run the jobs in threads released at the same moment; their results."""
    start = threading.Barrier(len(jobs))

    def run(job):
        start.wait()
        try:
            return job()
        finally:
            connection.close()  # each thread's own database connection

    with ThreadPoolExecutor(len(jobs)) as pool:
        return [future.result() for future in [pool.submit(run, job) for job in jobs]]


def deliver(url: str, body: bytes, headers: dict):
    return lambda: httpx.post(url, content=body, headers=headers, timeout=60).status_code


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_make_one_call(acme_callrail, sandbox, live_server, worker):
    made = make_calls(sandbox, scenario="booked")[0]
    body, headers = signed_webhook(sandbox, made["id"])
    url = f"{live_server.url}/callrail/call.completed"

    with worker.running():
        statuses = together(*[deliver(url, body, headers) for _ in range(20)])

    assert statuses == [200] * 20
    assert worker.failed == []
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PROCESSED
    call = Call.objects.get()
    assert (call.external_id, call.stage) == (made["id"], Stage.RECORDED)
    assert list(call.webhook_events.all()) == [event]
    assert Contact.objects.count() == 1 and call.contact == Contact.objects.get()
    assert worker.count(INGEST) == 1 and worker.count(TRANSCRIBE) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("numeric_only", [False, True], ids=["cal-id", "numeric-id"])
def test_a_webhook_racing_sweeps_makes_one_call(
    acme_callrail, sandbox, live_server, worker, numeric_only
):
    made = make_calls(sandbox, days=EARLIER_TODAY, scenario="booked")[0]
    body, headers = signed_webhook(sandbox, made["id"], numeric_only=numeric_only)
    url = f"{live_server.url}/callrail/call.completed"

    with worker.running():
        together(
            *[deliver(url, body, headers) for _ in range(5)],
            lambda: sweeps.reconcile_company(acme_callrail),
            lambda: sweeps.reconcile_company(acme_callrail),
        )

    assert worker.failed == []
    call = Call.objects.get()
    assert (call.external_id, call.legacy_id) == (made["id"], str(made["legacy_id"]))
    assert call.stage == Stage.RECORDED
    assert call.webhook_events.count() == 1
    assert Contact.objects.count() == 1
    assert worker.count(TRANSCRIBE) == 1
