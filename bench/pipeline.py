# ruff: noqa: T201, S603, S608 - a command-line tool that prints and runs processes
"""Pipeline throughput (ingest → transcription → indexing → analysis → apply) on real
qcluster workers, against an equivalent Celery chain in the same run, and worker CPU per
stage.

    .venv/bin/python bench/pipeline.py [--calls 40] [--workers 1,2,4] [--time-scale 0.1]
        [--llm-seconds 5] [--rounds 1] [--profile] [--celery-broker redis://…/14]
        [--celery-db reuse|close]

Needs the bench extra (``pip install -e '.[bench]'``: Celery). Starts the provider sandbox
(``manage.py sandbox``), two gunicorns (Otto's, and the Celery side's: bench/celery_chain.py)
and, for each worker count, one default qcluster (``Q_WORKERS``) and one Celery worker
(prefork, ``--concurrency``) in turn, on PostgreSQL ``otto_bench`` and Redis DB 12 (the
Celery broker: ``--celery-broker``, ``BENCH_CELERY_URL``, DB 14), like
bench/webhook_ingest.py. Each run asks the sandbox's CallRail for ``--calls`` calls of the
``booked`` scenario (73 s of audio); the sandbox delivers their signed post-call webhooks
to gunicorn, and the workers process each webhook event, ingest the call (call → recording
download), transcribe it on the sandbox's Deepgram, index it, analyse it on the sandbox's
OpenAI (structured outputs) and apply its outcomes (lead, appointment, tasks; follow-ups'
hand-off). A run ends when every call is ``done`` and indexed.

The Celery side runs the same Otto task functions, one Celery task each in a ``chain()``
per call, started by the webhook view's enqueue (bench/celery_chain.py says what is and is
not the same). For each worker count and latency the two run back to back on fresh data,
which of them goes first alternating.

Deepgram's pre-recorded API answers in about 0.2x the audio's length, so the sandbox holds
each ``listen`` request for ``0.2 x 73 s x --time-scale``, and each OpenAI analysis for
``--llm-seconds x --time-scale`` (the failures API's ``latency`` mode). The time scale
keeps a run short while the provider wait still dwarfs the plumbing; the latency-bound
ceiling (workers x 60 / total delay calls per minute) scales with it, so the efficiency
column does not.

Reported for each worker count, with zero provider latency as the baseline in the same
run (plumbing-bound), and with the realistic latency:

- calls per minute, Otto's and the Celery chain's, and their ratio; Otto's ratio to 1
  worker with the same latency and, with latency, to the latency-bound ceiling;
- worker CPU ms per call: user + system time of every process of the cluster (sentinel,
  workers, monitor, pusher, guard; the Celery worker's main process and its children)
  from ``/proc/<pid>/stat``, over the run, per call; in parentheses the part spent in
  the tasks themselves (every task's own CPU, warm-ups included), the rest being the
  scheduler's own work;
- worker CPU per stage: each task's own CPU time in its worker (bench/apps.py,
  bench/celery_chain.py), per task function, over every run.

``--profile`` adds one run (Otto, 1 worker, no latency) with each task under cProfile and
prints each stage's hot spots: profiling slows the tasks, so that run is not in the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhook_ingest import (  # noqa: E402 -- needs the repository on sys.path
    CALLRAIL_COMPANY,
    DATABASE_URL,
    ENV,
    REDIS_URL,
    SIGNING_KEY,
    free_port,
    manage,
    prepare_database,
)
from integrations.sandbox.config import CREDENTIALS  # noqa: E402

SCENARIO = "booked"
AUDIO_SECONDS = 73.08  # integrations/sandbox/scenarios.py: the booked call's length
DEEPGRAM_FACTOR = 0.2  # Deepgram pre-recorded: about 0.2x the audio's length
# A structured-output analysis of a one-minute call's transcript: a few seconds.
LLM_SECONDS = 5.0
# The stages' tasks, in pipeline order (the webhook event's processing is ingest's trigger).
STAGES = {
    "integrations.tasks.process_webhook_event": "webhook event",
    "calls.tasks.ingest_call": "ingest",
    "calls.tasks.transcribe_call": "transcription",
    "calls.tasks.index_call": "indexing",
    "analysis.tasks.analyze_call": "analysis",
    "appointments.tasks.apply_call": "apply (outcomes, follow-ups: done)",
    # After the call is done, off its path (a provider call, like the others).
    "appointments.tasks.geocode_appointment": "geocoding (after done)",
}
SYSTEMS = ("otto", "celery")
BUDGET_MS = 20  # DESIGN.md §8: worker CPU per stage
# The provider calls inside each stage (DESIGN.md §8's budget excludes providers): the
# adapter module and its entry points, whose cumulative time the profile attributes.
PROVIDER_CALLS = {
    "calls.tasks.ingest_call": (
        "integrations/callrail/client.py",
        {"get_call", "download_recording_to"},
    ),
    "calls.tasks.transcribe_call": (
        "integrations/deepgram/client.py",
        {"transcribe_bytes", "transcribe_url"},
    ),
    "analysis.tasks.analyze_call": ("integrations/openai/client.py", {"parse"}),
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The Celery chain's broker (bench/celery_chain.py): a Redis database of its own, neither
# django-q's (REDIS_URL's) nor Otto's cache (the next one: otto/settings.py).
CELERY_BROKER = os.environ.get("BENCH_CELERY_URL", "redis://127.0.0.1:6379/14")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--llm-seconds", type=float, default=LLM_SECONDS)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--celery-broker",
        default=CELERY_BROKER,
        help="the Celery chain's Redis database (flushed before each run)",
    )
    parser.add_argument(
        "--celery-db",
        choices=("reuse", "close"),
        default="reuse",
        help="the Celery worker's PostgreSQL connections: kept across tasks like Django-Q's "
        "(CONN_MAX_AGE), or Celery's default for Django (closed around every task)",
    )
    args = parser.parse_args()
    workers = [int(n) for n in args.workers.split(",")]
    delays = (DEEPGRAM_FACTOR * AUDIO_SECONDS * args.time_scale, args.llm_seconds * args.time_scale)
    delay = sum(delays)

    prepare_database()
    manage(
        "shell",
        "-c",
        "from otto.models import Company\n"
        "c = Company.objects.get(slug='bench')\n"
        f"c.callrail_account_id = '{CREDENTIALS['CALLRAIL_ACCOUNT_ID']}'\n"
        # Its own key: the deployment's never reads for a tenant.
        f"c.callrail_api_key = '{CREDENTIALS['CALLRAIL_API_KEY']}'\n"
        "c.save()\n",
    )
    results: list[dict] = []
    with stack() as env:
        # The Celery chain's side: its own gunicorn, whose webhook view starts each call's
        # chain.
        celery_env = {
            **env,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{free_port()}",
            "BENCH_CELERY_BROKER": args.celery_broker,
            **({"BENCH_CELERY_DB_REUSE_MAX": "1000000"} if args.celery_db == "reuse" else {}),
        }
        with web(celery_env):
            order = list(SYSTEMS)
            for _ in range(args.rounds):
                for count in workers:
                    for latency in ((0.0, 0.0), delays):
                        for system in order:
                            server_env = env if system == "otto" else celery_env
                            result = run(server_env, count, latency, args.calls)
                            results.append(result)
                            print(
                                f"{system}: {count} worker(s), provider latency "
                                f"{sum(latency):.2f} s: {result['per_minute']:.0f} calls/min, "
                                f"{result['cpu_ms']:.0f} CPU ms/call",
                                file=sys.stderr,
                            )
                        order.reverse()  # alternate which goes first, against drift
        profiles = run(env, 1, (0.0, 0.0), args.calls, profile=True) if args.profile else None
        reset_state(env)  # leaves no recordings behind in media/
    report(results, args, delay)
    for system in SYSTEMS:
        report_stages([r for r in results if r["system"] == system], system)
    if profiles is not None:
        report_profiles(profiles["stats_dir"])


@contextlib.contextmanager
def stack(web_workers: int = 2) -> Iterator[dict[str, str]]:
    """The provider sandbox and gunicorn (gunicorn.conf.py, ``web_workers`` processes) on
    free ports, up and answering; yields the environment that points at both."""
    env = {
        **ENV,
        "SANDBOX_URL": f"http://127.0.0.1:{free_port()}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{free_port()}",
    }
    sandbox = start(["manage.py", "sandbox"], env)
    try:
        wait_http(f"{env['SANDBOX_URL']}/_sandbox/routes")
        with web(env, web_workers):
            yield env
    finally:
        stop(sandbox)


@contextlib.contextmanager
def web(env: dict[str, str], web_workers: int = 2) -> Iterator[None]:
    """gunicorn serving ``env``'s ``PUBLIC_BASE_URL``, up and answering; stopped after."""
    port = str(urlsplit(env["PUBLIC_BASE_URL"]).port)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    process = start(
        [gunicorn, "otto.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(web_workers)],
        env,
    )
    try:
        wait_http(f"{env['PUBLIC_BASE_URL']}/health")
        yield
    finally:
        stop(process)


@contextlib.contextmanager
def cluster(env: dict[str, str], workers: int) -> Iterator[subprocess.Popen]:
    """One default qcluster of ``workers`` workers (``Q_WORKERS``), or on the Celery side
    (``BENCH_CELERY_BROKER`` set) one Celery worker of that concurrency, up; stopped after.
    ``env`` names the task-statistics folder (``BENCH_TASK_STATS``)."""
    celery = bool(env.get("BENCH_CELERY_BROKER"))
    if celery:
        process = start(celery_worker(workers), env)
    else:
        process = start(["manage.py", "qcluster"], {**env, "Q_WORKERS": str(workers)})
    try:
        if celery:
            wait_celery(process, workers, env["BENCH_TASK_STATS"])
        else:
            wait_cluster(env, process, workers)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        argv if argv[0] != "manage.py" else [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urlopen(url, timeout=1):  # noqa: S310 -- a local URL we built
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{url} did not answer")


def post(url: str, body: dict) -> dict:
    request = Request(  # noqa: S310 -- a local URL we built
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urlopen(request, timeout=120) as response:  # noqa: S310
        return json.loads(response.read())


def reset_state(env: dict[str, str]) -> None:
    import psycopg
    import redis

    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        # the cluster stores recordings under the project's media root (no S3 here)
        for (name,) in conn.execute("SELECT recording FROM calls_call WHERE recording <> ''"):
            (ROOT / "media" / name).unlink(missing_ok=True)
        conn.execute("TRUNCATE calls_call, integrations_webhookevent CASCADE")
    redis.Redis.from_url(REDIS_URL).flushdb()
    if broker := env.get("BENCH_CELERY_BROKER"):
        redis.Redis.from_url(broker).flushdb()
    post(f"{env['SANDBOX_URL']}/_sandbox/reset", {})


def run(
    env: dict[str, str],
    workers: int,
    latency: tuple[float, float],
    calls: int,
    *,
    profile: bool = False,
) -> dict:
    """One run of ``calls`` calls; ``latency``: the transcription's and the analysis'."""
    import psycopg

    reset_state(env)
    system = "celery" if env.get("BENCH_CELERY_BROKER") else "otto"
    stats_dir = tempfile.mkdtemp(prefix="otto-bench-tasks-")
    cluster_env = {**env, "BENCH_TASK_STATS": stats_dir}
    if profile:
        cluster_env["BENCH_PROFILE"] = "1"
    with cluster(cluster_env, workers) as process:
        for endpoint, seconds in zip(("deepgram.listen", "openai.responses"), latency, strict=True):
            if seconds:
                post(
                    f"{env['SANDBOX_URL']}/_sandbox/failures",
                    {
                        "endpoint": endpoint,
                        "mode": "latency",
                        "count": calls,
                        "delay_seconds": seconds,
                    },
                )
        cpu_before = cluster_cpu_seconds(process.pid)
        started = time.monotonic()
        made = post(
            f"{env['SANDBOX_URL']}/_sandbox/callrail/calls",
            {
                "account_id": CREDENTIALS["CALLRAIL_ACCOUNT_ID"],
                "company_id": CALLRAIL_COMPANY,
                "count": calls,
                "scenario": SCENARIO,
                "signing_key": SIGNING_KEY,
                "webhook_url": f"{env['PUBLIC_BASE_URL']}/callrail/call.completed",
            },
        )["calls"]
        if any(call["status"] != 200 for call in made):
            sys.exit(f"webhook deliveries failed: {[c['status'] for c in made]}")
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            while True:
                # the pipeline's end: outcomes applied, follow-ups handed off, indexed
                done, failed = conn.execute(
                    "SELECT count(*) FILTER (WHERE stage = 'done' "
                    "AND search_vector IS NOT NULL), count(*) FILTER (WHERE stage = 'failed') "
                    "FROM calls_call"
                ).fetchone()
                if failed:
                    sys.exit(f"{failed} call(s) failed; see the admin")
                if done == calls:
                    break
                if time.monotonic() - started > 600:
                    sys.exit(f"only {done} of {calls} calls done after 10 minutes")
                time.sleep(0.05)
        elapsed = time.monotonic() - started
        cpu = cluster_cpu_seconds(process.pid) - cpu_before
    return {
        "system": system,
        "workers": workers,
        "latency": sum(latency),
        "seconds": elapsed,
        "per_minute": calls / elapsed * 60,
        "cpu_ms": cpu * 1000 / calls,
        "task_cpu_ms": sum(line["cpu_ms"] for line in task_stats(stats_dir)) / calls,
        "tasks": task_stats(stats_dir),
        "stats_dir": stats_dir,
    }


def task_stats(directory: str) -> list[dict]:
    """The per-task lines the cluster's workers wrote (bench/apps.py)."""
    lines: list[dict] = []
    for path in Path(directory).glob("tasks-*.jsonl"):
        seen: set[str] = set()
        for raw in path.read_text().splitlines():
            line = json.loads(raw)
            # A worker's first task of each function pays its imports and the SDKs'
            # first-use work (pydantic schemas): once per worker, not per call.
            line["first"] = line["func"] not in seen
            seen.add(line["func"])
            lines.append(line)
    return lines


def celery_worker(workers: int) -> list[str]:
    """The Celery side's worker: prefork, ``workers`` child processes, no remote control
    chatter (gossip, mingle, heartbeats) that the comparison does not need."""
    return [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "bench.celery_chain",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(workers),
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def wait_celery(worker: subprocess.Popen, workers: int, stats_dir: str) -> None:
    """Until the worker said it is ready (bench/celery_chain.py) with its children up."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            sys.exit("celery worker exited")
        if (Path(stats_dir) / "celery-ready").exists() and len(descendants(worker.pid)) > workers:
            time.sleep(1)  # as for the qcluster
            return
        time.sleep(0.2)
    sys.exit("celery worker did not come up")


def wait_cluster(env: dict[str, str], cluster: subprocess.Popen, workers: int) -> None:
    """Until the cluster's sentinel has its workers up and the guard saved its stat."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cluster.poll() is not None:
            sys.exit("qcluster exited")
        try:
            with urlopen(f"{env['PUBLIC_BASE_URL']}/health/workers", timeout=2) as response:  # noqa: S310
                body = json.loads(response.read())
        except OSError as exc:  # 503 until the cluster is alive
            body = json.loads(exc.read()) if hasattr(exc, "read") else {}
        alive = body.get("clusters", {}).get("default", {}).get("alive")
        if alive and len(descendants(cluster.pid)) >= workers + 3:
            time.sleep(1)  # let the workers finish importing
            return
        time.sleep(0.2)
    sys.exit("qcluster did not come up")


def proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces: split after it
    return raw[raw.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := proc_stat(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [root], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def cluster_cpu_seconds(root: int) -> float:
    """utime + stime of the cluster's live processes (fields 14 and 15 of stat)."""
    ticks = 0
    for pid in descendants(root):
        fields = proc_stat(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def report(results: list[dict], args, delay: float) -> None:
    def median(system: str, workers: int, latency: float, key: str) -> float:
        return statistics.median(
            r[key]
            for r in results
            if r["system"] == system and r["workers"] == workers and r["latency"] == latency
        )

    def cpu(system: str, workers: int, latency: float) -> str:
        return (
            f"{median(system, workers, latency, 'cpu_ms'):.0f} "
            f"({median(system, workers, latency, 'task_cpu_ms'):.0f})"
        )

    workers = sorted({r["workers"] for r in results})
    print(
        f"\n{args.calls} '{SCENARIO}' calls per run, {args.rounds} round(s) (medians); "
        f"provider latency {delay:.2f} s per call: transcription "
        f"{DEEPGRAM_FACTOR} x {AUDIO_SECONDS} s of audio, analysis {args.llm_seconds} s, "
        f"x time scale {args.time_scale}; Celery's database connections: "
        f"{args.celery_db}; load average at the end "
        f"{' / '.join(f'{n:.1f}' for n in os.getloadavg())} on {os.cpu_count()} CPUs\n"
    )
    print(
        "| workers | latency | Otto calls/min | Celery chain calls/min | Otto / Celery "
        "| Otto vs 1 worker | Otto vs latency-bound ceiling "
        "| Otto worker CPU ms/call (in tasks) | Celery worker CPU ms/call (in tasks) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for latency in (0.0, delay):
        base = median("otto", workers[0], latency, "per_minute")
        for count in workers:
            otto = median("otto", count, latency, "per_minute")
            celery = median("celery", count, latency, "per_minute")
            ceiling = f"{otto / (count * 60 / latency):.2f}" if latency else "-"
            print(
                f"| {count} | {'none (baseline)' if not latency else f'{latency:.2f} s'} "
                f"| {otto:,.0f} | {celery:,.0f} | {otto / celery:.2f} | {otto / base:.2f} "
                f"| {ceiling} | {cpu('otto', count, latency)} | {cpu('celery', count, latency)} |"
            )


def report_stages(results: list[dict], system: str) -> None:
    """Worker CPU per stage, every task of every run, against the per-stage budget: in
    steady state, and each worker's first task of the kind (its warm-up) apart."""
    steady: dict[str, list[float]] = {}
    first: dict[str, list[float]] = {}
    for result in results:
        for line in result["tasks"]:
            if line["func"] in STAGES:
                (first if line["first"] else steady).setdefault(line["func"], []).append(
                    line["cpu_ms"]
                )
    print(
        f"\n{system}: | stage (task) | tasks | CPU ms median | p90 | mean "
        f"| vs {BUDGET_MS} ms budget | a worker's first (warm-up), mean ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for func, stage in STAGES.items():
        values = sorted(steady.get(func, []))
        if not values:
            continue
        p90 = values[int(0.9 * (len(values) - 1))]
        median = statistics.median(values)
        warm = first.get(func, [])
        print(
            f"| {stage} (`{func}`) | {len(values)} | {median:.1f} | {p90:.1f} "
            f"| {statistics.mean(values):.1f} | {median / BUDGET_MS:.2f} "
            f"| {statistics.mean(warm) if warm else 0:.0f} ({len(warm)}) |"
        )


def report_profiles(directory: str, top: int = 12) -> None:
    """Each stage's hot spots in the profiled run (CPU time): the share its provider
    calls take, then the functions with the most own and cumulative time."""
    for func, stage in STAGES.items():
        files = sorted(str(p) for p in Path(directory).glob(f"{func}-*.prof"))
        if not files:
            continue
        stats = pstats.Stats(*files, stream=sys.stdout)
        entries = stats.stats  # type: ignore[attr-defined]  # {(file, line, name): (.., cumtime, ..)}
        module, entry_points = PROVIDER_CALLS.get(func, ("", set()))
        task_module, _, task_name = func.rpartition(".")
        task = sum(
            v[3]
            for (file, _, name), v in entries.items()
            if name == task_name and file.endswith(task_module.replace(".", "/") + ".py")
        )
        provider = sum(
            v[3]
            for (file, _, name), v in entries.items()
            if module and file.endswith(module) and name in entry_points
        )
        print(f"\n### {stage}: `{func}` (cProfile, CPU time, all tasks of the run)\n")
        if task:
            print(f"provider calls: {provider:.3f} s of {task:.3f} s ({provider / task:.0%})\n")
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)


if __name__ == "__main__":
    main()
