# ruff: noqa: T201, S603, S608 - a command-line tool that prints and runs processes
"""Pipeline throughput (ingest → transcription → indexing → analysis) on real qcluster
workers, and worker CPU per stage.

    .venv/bin/python bench/pipeline.py [--calls 40] [--workers 1,2,4] [--time-scale 0.1]
        [--llm-seconds 5] [--rounds 1] [--profile]

Starts the provider sandbox (``manage.py sandbox``), gunicorn and, for each worker count,
one default qcluster (``Q_WORKERS``) on PostgreSQL ``otto_bench`` and Redis DB 12, like
bench/webhook_ingest.py. Each run asks the sandbox's CallRail for ``--calls`` calls of the
``booked`` scenario (73 s of audio); the sandbox delivers their signed post-call webhooks
to gunicorn, and the cluster ingests each (webhook event → call → recording download),
transcribes it on the sandbox's Deepgram, indexes it and analyses it on the sandbox's
OpenAI (structured outputs). A run ends when every call is indexed and ``analyzed``, or
already past it (appointments apply the outcomes next, on the same workers).

Deepgram's pre-recorded API answers in about 0.2x the audio's length, so the sandbox holds
each ``listen`` request for ``0.2 x 73 s x --time-scale``, and each OpenAI analysis for
``--llm-seconds x --time-scale`` (the failures API's ``latency`` mode). The time scale
keeps a run short while the provider wait still dwarfs the plumbing; the latency-bound
ceiling (workers x 60 / total delay calls per minute) scales with it, so the efficiency
column does not.

Reported for each worker count, with zero provider latency as the baseline in the same
run (plumbing-bound), and with the realistic latency:

- calls per minute, and the ratio to 1 worker with the same latency;
- with latency, the ratio to the latency-bound ceiling;
- worker CPU ms per call: user + system time of every process of the cluster (sentinel,
  workers, monitor, pusher, guard) from ``/proc/<pid>/stat``, over the run, per call;
- worker CPU per stage: each task's own CPU time in its worker (bench/apps.py), per task
  function, over every run.

``--profile`` adds one run (1 worker, no latency) with each task under cProfile and prints
each stage's hot spots: profiling slows the tasks, so that run is not in the figures.
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
}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--llm-seconds", type=float, default=LLM_SECONDS)
    parser.add_argument("--profile", action="store_true")
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
        for _ in range(args.rounds):
            for count in workers:
                for latency in ((0.0, 0.0), delays):
                    result = run(env, count, latency, args.calls)
                    results.append(result)
                    print(
                        f"{count} worker(s), provider latency {sum(latency):.2f} s: "
                        f"{result['per_minute']:.0f} calls/min, "
                        f"{result['cpu_ms']:.0f} CPU ms/call",
                        file=sys.stderr,
                    )
        profiles = run(env, 1, (0.0, 0.0), args.calls, profile=True) if args.profile else None
        reset_state(env)  # leaves no recordings behind in media/
    report(results, args, delay)
    report_stages(results)
    if profiles is not None:
        report_profiles(profiles["stats_dir"])


@contextlib.contextmanager
def stack(web_workers: int = 2) -> Iterator[dict[str, str]]:
    """The provider sandbox and gunicorn (gunicorn.conf.py, ``web_workers`` processes) on
    free ports, up and answering; yields the environment that points at both."""
    sandbox_port, web_port = free_port(), free_port()
    env = {
        **ENV,
        "SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
    }
    sandbox = start(["manage.py", "sandbox"], env)
    web = start(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "otto.wsgi",
            "--bind",
            f"127.0.0.1:{web_port}",
            "--workers",
            str(web_workers),
        ],
        env,
    )
    try:
        wait_http(f"{env['SANDBOX_URL']}/_sandbox/routes")
        wait_http(f"{env['PUBLIC_BASE_URL']}/health")
        yield env
    finally:
        for process in (web, sandbox):
            process.terminate()
            process.wait(timeout=10)


@contextlib.contextmanager
def cluster(env: dict[str, str], workers: int) -> Iterator[subprocess.Popen]:
    """One default qcluster of ``workers`` workers (``Q_WORKERS``), up; stopped after."""
    process = start(["manage.py", "qcluster"], {**env, "Q_WORKERS": str(workers)})
    try:
        wait_cluster(env, process, workers)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


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
                done, failed = conn.execute(
                    # analysed, or already past it (appointments apply the outcomes next)
                    "SELECT count(*) FILTER (WHERE stage IN ('analyzed', 'applying', "
                    "'applied', 'done') "
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
        "workers": workers,
        "latency": sum(latency),
        "seconds": elapsed,
        "per_minute": calls / elapsed * 60,
        "cpu_ms": cpu * 1000 / calls,
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
    def median(workers: int, latency: float, key: str) -> float:
        return statistics.median(
            r[key] for r in results if r["workers"] == workers and r["latency"] == latency
        )

    workers = sorted({r["workers"] for r in results})
    print(
        f"\n{args.calls} '{SCENARIO}' calls per run, {args.rounds} round(s) (medians); "
        f"provider latency {delay:.2f} s per call: transcription "
        f"{DEEPGRAM_FACTOR} x {AUDIO_SECONDS} s of audio, analysis {args.llm_seconds} s, "
        f"x time scale {args.time_scale}; load average at the end "
        f"{' / '.join(f'{n:.1f}' for n in os.getloadavg())} on {os.cpu_count()} CPUs\n"
    )
    print(
        "| workers | latency | calls/min | vs 1 worker | vs latency-bound ceiling "
        "| worker CPU ms/call |"
    )
    print("|---|---|---|---|---|---|")
    for latency in (0.0, delay):
        base = median(workers[0], latency, "per_minute")
        for count in workers:
            per_minute = median(count, latency, "per_minute")
            ceiling = f"{per_minute / (count * 60 / latency):.2f}" if latency else "-"
            print(
                f"| {count} | {'none (baseline)' if not latency else f'{latency:.2f} s'} "
                f"| {per_minute:,.0f} | {per_minute / base:.2f} | {ceiling} "
                f"| {median(count, latency, 'cpu_ms'):.0f} |"
            )


def report_stages(results: list[dict]) -> None:
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
        f"\n| stage (task) | tasks | CPU ms median | p90 | mean | vs {BUDGET_MS} ms budget "
        "| a worker's first (warm-up), mean ms |"
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
