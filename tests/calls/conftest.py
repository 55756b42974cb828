"""Fixtures for call ingest: a CallRail-configured Acme and Globex, sandbox calls, and a
stand-in worker that records (and, when asked, runs) what ``otto.queues.enqueue`` pushes."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter

import httpx
import pytest

from integrations.sandbox.config import CREDENTIALS
from otto import queues
from otto.crypto import Secret
from otto.models import CallRailCompany, PhoneNumber

ACCOUNT = CREDENTIALS["CALLRAIL_ACCOUNT_ID"]
ACME_KEY = "072e77e426f92738a72fe23c4d1953b4"
GLOBEX_KEY = "9a1d0c5e88b1473fb2c0e6d4a7f3b215"
# The CallRail company of the captured fixtures (numeric legacy id and COM… id).
ACME_COM = "COM8154748ae6bd4e278a7cddd38a662f4f"
ACME_LEGACY_COM = "155920786"
GLOBEX_COM = "COM0000globex"

INGEST = "calls.tasks.ingest_call"
TRANSCRIBE = "calls.tasks.transcribe_call"


class Worker:
    """Replaces the broker push: records each task pushed on commit, and runs it in-process
    (as a worker would, nested pushes included) while :meth:`running`."""

    def __init__(self) -> None:
        self.pushed: list[tuple[str, str, tuple]] = []
        self.failed: list[tuple[str, Exception]] = []
        self.inline = False
        # Ingest's tests stop at the seam: transcription is pushed (and counted), not run;
        # tests/pipeline runs it.
        self.held = {TRANSCRIBE}
        self._lock = threading.Lock()

    def push(self, queue, path, ids, request_id, name=None) -> None:
        with self._lock:
            self.pushed.append((str(queue), path, ids))
        if not self.inline or path in self.held:
            return
        try:
            queues.TASKS[path](*ids)
        except Exception as exc:  # a task's failure stays its own, as in a real worker
            with self._lock:
                self.failed.append((path, exc))

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for _, pushed, _ in self.pushed if pushed == path)

    def paths(self) -> Counter:
        with self._lock:
            return Counter(path for _, path, _ in self.pushed)

    def run(self, path: str, *ids) -> None:
        queues.TASKS[path](*ids)

    @contextlib.contextmanager
    def running(self):
        self.inline = True
        try:
            yield self
        finally:
            self.inline = False


@pytest.fixture
def worker(monkeypatch) -> Worker:
    stand_in = Worker()
    monkeypatch.setattr(queues, "_push", stand_in.push)
    return stand_in


@pytest.fixture
def run_tasks(worker, django_capture_on_commit_callbacks):
    """In a ``db`` test (one wrapping transaction), commit hooks run only when captured:
    this runs them, and every task they push, inline; the worker counts from zero."""

    @contextlib.contextmanager
    def run():
        worker.pushed.clear()
        worker.failed.clear()
        with worker.running(), django_capture_on_commit_callbacks(execute=True):
            yield worker

    return run


@pytest.fixture(autouse=True)
def _recordings_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def configure_callrail(company, *, ids, key, tracking=None):
    company.callrail_account_id = ACCOUNT
    company.callrail_signing_key = Secret(key)
    # Its own API key: the deployment's is never used for a tenant (docs/webhooks.md).
    company.callrail_api_key = Secret(CREDENTIALS["CALLRAIL_API_KEY"])
    company.save()
    for value in ids:
        CallRailCompany.objects.create(company=company, callrail_company_id=str(value))
    if tracking:
        PhoneNumber.objects.create(company=company, number=tracking, kind="tracking")
    company.refresh_from_db()
    return company


@pytest.fixture
def acme_callrail(acme, sandbox):
    return configure_callrail(
        acme, ids=[ACME_LEGACY_COM, ACME_COM], key=ACME_KEY, tracking="+14045558514"
    )


@pytest.fixture
def globex_callrail(globex, sandbox):
    return configure_callrail(globex, ids=[GLOBEX_COM], key=GLOBEX_KEY, tracking="+15555550199")


def make_calls(sandbox, count: int = 1, *, company_id: str = ACME_COM, **spec) -> list[dict]:
    """Calls in the sandbox's CallRail (no webhook unless ``webhook_url`` is given)."""
    body = {"account_id": ACCOUNT, "company_id": company_id, "count": count, **spec}
    response = httpx.post(f"{sandbox.url}/_sandbox/callrail/calls", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["calls"]


def sandbox_call(sandbox, call_id: str) -> dict:
    return sandbox.state["callrail"]["calls"][call_id]
