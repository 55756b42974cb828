"""`GET /metrics`: Prometheus text behind a bearer token, with the series DESIGN §9.7 names,
added up across processes in multiprocess mode. LLM tokens: tests/analysis/test_metrics.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from calls.models import Call
from integrations import errors
from otto.queues import Queue
from tests.api.factories import CallFactory

TOKEN = "m3tr1cs-Zq8vN2kLx7RpW4yT"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client) -> dict:
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


def test_without_a_configured_token_the_endpoint_is_not_there(client, settings):
    settings.METRICS_TOKEN = None
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer é"],
)
def test_the_token_is_required(client, token, header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "not_authenticated"
    assert "otto_" not in response.content.decode()


def test_series_after_real_traffic(client, db, token, acme):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/health").status_code == 200
    assert client.get("/api/v1/calls/12345/").status_code == 401
    assert client.get("/no/such/page").status_code == 404
    # A webhook with a bad signature is refused and counted as such.
    assert (
        client.post("/webhooks/shunya", b"{}", content_type="application/json").status_code == 401
    )
    with errors.track("metricstest", "ping"):
        pass
    CallFactory.create_batch(2, company=acme, stage=Call.Stage.FAILED)

    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "otto_http_requests_total"
    assert grew(requests, route="health", method="GET", status="200") == 3
    detail = [k for k in after if k[0] == requests and ("status", "401") in k[1]]
    routes = {dict(labels)["route"] for _, labels in detail}
    assert "api/v1/calls/(?P<pk>[^/.]+)/$" in routes, routes
    assert grew(requests, route="unmatched", method="GET", status="404") == 1
    assert grew("otto_http_request_duration_seconds_count", route="health") == 3
    assert grew("otto_webhooks_total", provider="shunya", outcome="bad_signature") == 1
    assert grew("otto_provider_requests_total", provider="metricstest", outcome="ok") == 1
    assert grew("otto_provider_request_duration_seconds_count", provider="metricstest") == 1
    assert value(after, "otto_calls_by_stage", stage="failed") == 2
    assert value(after, "otto_calls_by_stage", stage="done") == 0
    assert {dict(labels)["queue"] for name, labels in after if name == "otto_queue_depth"} == {
        q.value for q in Queue
    }
    # No series is split by tenant.
    assert not any("company" in key or "tenant" in key for _, labels in after for key, _ in labels)


def test_queue_depth_counts_waiting_tasks(client, db, token, broker_redis):
    from otto.queues import get_broker

    get_broker("default").enqueue("a-task-nobody-reads")
    parsed = scrape(client)
    assert value(parsed, "otto_queue_depth", queue="default") == 1


def test_a_failing_collector_leaves_the_rest_of_the_scrape(client, db, token):
    from otto import metrics

    def broken():
        raise RuntimeError("database down")

    metrics.register_collector("broken", broken)
    try:
        parsed = scrape(client)
    finally:
        metrics._collectors.pop("broken")
    assert any(name == "otto_queue_depth" for name, _ in parsed)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker_pids(server: int) -> set[int]:
    return {int(pid) for pid in Path(f"/proc/{server}/task/{server}/children").read_text().split()}


@pytest.fixture
def web(db, tmp_path):
    """The Procfile's web process (``python -m otto.web``: granian, two workers of four
    threads, a database pool each) with a multiprocess metrics directory, against the test
    database; its base URL, metrics directory and main process."""
    port = _free_port()
    metrics_dir = tmp_path / "prometheus"
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_TOKEN": TOKEN,
        "ENVIRONMENT": "development",
        "WEB_CONCURRENCY": "2",
    }
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "otto.web", "--host", "127.0.0.1", "--port", str(port)],
        cwd=root,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            # Probing another route keeps the health counts to the test's own requests.
            if httpx.get(f"{base}/metrics", timeout=1).status_code == 401:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("python -m otto.web did not start")
        time.sleep(0.2)
    yield base, metrics_dir, process
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=60)


def test_counts_from_two_web_workers_add_up(web):
    base, metrics_dir, _ = web
    sent = 0

    def hit(_: int) -> int:
        with httpx.Client() as session:
            return session.get(f"{base}/health", timeout=10).status_code

    # Concurrent requests land on both workers; keep going until both have written.
    with ThreadPoolExecutor(8) as pool:
        for _ in range(20):
            assert set(pool.map(hit, range(40))) == {200}
            sent += 40
            if len(list(metrics_dir.glob("counter_*.db"))) >= 2:
                break
    pids = {path.stem.split("_")[1] for path in metrics_dir.glob("counter_*.db")}
    assert len(pids) == 2, pids

    response = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    parsed = samples(response.text)
    assert (
        value(parsed, "otto_http_requests_total", route="health", method="GET", status="200")
        == sent
    )
    assert value(parsed, "otto_http_request_duration_seconds_count", route="health") == sent
    assert httpx.get(f"{base}/metrics").status_code == 401


def test_a_web_worker_that_dies_is_started_again_and_its_live_gauges_dropped(web):
    base, metrics_dir, process = web
    first = _worker_pids(process.pid)
    assert len(first) == 2, first
    dead = min(first)
    # What a live gauge of the dying worker would have left (Otto records none today).
    (metrics_dir / f"gauge_livesum_{dead}.db").write_bytes(b"")
    os.kill(dead, signal.SIGKILL)

    deadline = time.monotonic() + 30
    while True:
        now = _worker_pids(process.pid)
        if len(now) == 2 and dead not in now:
            break
        assert time.monotonic() < deadline, now
        time.sleep(0.2)
    deadline = time.monotonic() + 30
    while (metrics_dir / f"gauge_livesum_{dead}.db").exists():
        assert time.monotonic() < deadline, "the dead worker's live gauge is still there"
        time.sleep(0.2)
    assert httpx.get(f"{base}/health", timeout=10).status_code == 200
    assert process.poll() is None


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_forget_dead_processes_drops_only_the_live_gauges_of_processes_that_are_gone(tmp_path):
    from otto.metrics import forget_dead_processes

    dead, alive = _dead_pid(), os.getpid()
    names = [
        f"gauge_livesum_{dead}.db",
        f"gauge_liveall_{dead}.db",
        f"counter_{dead}.db",
        f"gauge_all_{dead}.db",
        f"gauge_livesum_{alive}.db",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")

    assert forget_dead_processes(str(tmp_path)) == [dead]

    left = sorted(path.name for path in tmp_path.iterdir())
    assert left == sorted([f"counter_{dead}.db", f"gauge_all_{dead}.db", names[-1]])
