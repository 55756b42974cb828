# ruff: noqa: T201, S603, S607 - a command-line tool that prints and runs wrk and gunicorn
"""Signed webhook ingest throughput, as ratios against reference views in the same run.

    .venv/bin/python bench/webhook_ingest.py [--seconds 15] [--connections 8] [--rounds 3]

Starts gunicorn (sync workers, as the Procfile does) on PostgreSQL and Redis, then drives
it with wrk (``apt-get install wrk``) at a fixed concurrency against:

- ``hello``: a view that touches nothing;
- ``insert``: one ``INSERT … ON CONFLICT DO NOTHING`` of a webhook row;
- ``insert+enqueue``: that insert plus one enqueue on the shared broker (the baseline);
- ``callrail webhook``: ``POST /callrail/call.completed`` with a ~1 KB body, each request a
  new call, signed with the tenant's key: signature check, tenant lookup, inbox insert,
  enqueue of its processing.

Nothing consumes the queue during a run. Each round runs every target once, in turn, so
drift in the machine affects them alike; the figures are medians over the rounds. It uses
its own database (``otto_bench``, created if missing) and Redis DB 12, and empties both.
DESIGN.md §8 sets the budget: the webhook at >= 70% of insert+enqueue, p95 < 20 ms at c=8.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/otto_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
SIGNING_KEY = "bench-signing-key-" + "0" * 14
CALLRAIL_COMPANY = "COM0000bench"
TRACKING = "+15555550190"

ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "ENVIRONMENT": "staging",
    "SECRET_KEY": "bench-" + "x" * 60,
    "FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(b"b" * 32).decode(),
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "ALLOWED_HOSTS": "127.0.0.1",
    "PUBLIC_BASE_URL": "http://127.0.0.1",
    # One log line per request is production's cost too; WARNING keeps the disk out of it.
    "LOG_LEVEL": "WARNING",
    "SENTRY_DSN": "",
}

# wrk: each thread cycles through its share of pre-signed requests; done() prints JSON.
LUA = r"""
local lines, n, counter, thread_id, threads = {}, 0, 0, 0, 1
local path, file = "%(path)s", "%(file)s"
function setup(thread)
  thread:set("thread_id", thread_id); thread_id = thread_id + 1
  thread:set("threads", %(threads)d)
end
function init(args)
  for line in io.lines(file) do
    local sig, body = line:match("^([^\t]*)\t(.*)$")
    n = n + 1; lines[n] = {sig, body}
  end
  counter = thread_id
end
function request()
  local item = lines[(counter %% n) + 1]
  counter = counter + threads
  local headers = {["Content-Type"] = "application/json"}
  if item[1] ~= "" then headers["Signature"] = item[1] end
  return wrk.format("POST", path, headers, item[2])
end
function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %%d, "seconds": %%f, "non2xx": %%d, "socket_errors": %%d, ' ..
    '"p50_us": %%d, "p95_us": %%d, "p99_us": %%d}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""

TARGETS = {
    "hello": ("/bench/hello", False),
    "insert": ("/bench/insert", False),
    "insert+enqueue": ("/bench/insert-enqueue", False),
    "callrail webhook": ("/callrail/call.completed", True),
}
BASELINE = "insert+enqueue"
WARM_UP_REQUESTS = 6000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")

    prepare_database()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        # Fresh calls for the warm-up and for the run: a replayed body would be a cheaper
        # duplicate. The run's file must outlast it (checked in run_wrk).
        files = {
            name: (
                write_requests(Path(tmp) / f"{i}-warm.tsv", signed, WARM_UP_REQUESTS),
                write_requests(Path(tmp) / f"{i}.tsv", signed, args.seconds * 4000),
            )
            for i, (name, (_, signed)) in enumerate(TARGETS.items())
        }
        web = start_gunicorn(port, args.web_workers)
        try:
            results: dict[str, list[dict]] = {name: [] for name in TARGETS}
            for round_number in range(args.rounds):
                for name, (path, signed) in TARGETS.items():
                    reset_state()
                    result = run_wrk(port, path, files[name], args, Path(tmp))
                    if signed and result["requests"] > args.seconds * 4000:
                        sys.exit(f"{name}: more requests than prepared calls; some were duplicates")
                    results[name].append(result)
                    print(
                        f"round {round_number + 1} {name:<17} {result['rps']:8.0f} req/s"
                        f"  p95 {result['p95_us'] / 1000:6.1f} ms"
                        f"  non-2xx {result['non2xx']}",
                        file=sys.stderr,
                    )
        finally:
            web.terminate()
            web.wait(timeout=10)
    report(results, args)


def prepare_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin_url = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    manage("migrate", "--noinput", "-v", "0")
    manage(
        "shell",
        "-c",
        "from otto.models import CallRailCompany, Company, PhoneNumber\n"
        f"c, _ = Company.objects.get_or_create(slug='bench', defaults={{'name': 'Bench'}})\n"
        f"c.callrail_signing_key = '{SIGNING_KEY}'\n"
        "c.save()\n"
        f"CallRailCompany.objects.get_or_create(callrail_company_id='{CALLRAIL_COMPANY}', "
        "defaults={'company': c})\n"
        f"PhoneNumber.objects.get_or_create(number='{TRACKING}', "
        "defaults={'company': c, 'kind': PhoneNumber.Kind.TRACKING})\n",
    )


def manage(*argv: str) -> None:
    subprocess.run([sys.executable, "manage.py", *argv], cwd=ROOT, env=ENV, check=True)


def write_requests(path: Path, signed: bool, count: int) -> Path:
    template = json.loads(
        (ROOT / "tests/integrations/fixtures/callrail/call.completed.answered.json").read_text()
    )
    template["company_resource_id"] = CALLRAIL_COMPANY
    with path.open("w") as out:
        for _ in range(count):
            template["resource_id"] = "CAL" + uuid.uuid4().hex
            template["id"] = int(uuid.uuid4().int % 10**9)
            body = json.dumps(template, separators=(",", ":"))
            signature = ""
            if signed:
                digest = hmac.new(SIGNING_KEY.encode(), body.encode(), hashlib.sha1).digest()
                signature = base64.b64encode(digest).decode()
            out.write(f"{signature}\t{body}\n")
    return path


def start_gunicorn(port: int, workers: int) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    web = subprocess.Popen(
        [str(gunicorn), "otto.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urlopen(f"http://127.0.0.1:{port}/bench/hello", timeout=1):
                return web
        except OSError:
            time.sleep(0.2)
    web.terminate()
    sys.exit("gunicorn did not start")


def reset_state() -> None:
    import psycopg
    import redis

    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("TRUNCATE integrations_webhookevent CASCADE")
    redis.Redis.from_url(REDIS_URL).flushdb()


def run_wrk(port: int, path: str, requests: tuple[Path, Path], args, tmp: Path) -> dict:
    threads = 2
    url = f"http://127.0.0.1:{port}"
    warm_up, run = requests
    # A short warm-up so each target starts with warm connections and caches.
    script = tmp / "warm.lua"
    script.write_text(LUA % {"path": path, "file": str(warm_up), "threads": 1})
    subprocess.run(
        ["wrk", "-t1", "-c2", "-d2s", "-s", str(script), url], capture_output=True, check=True
    )
    script = tmp / "run.lua"
    script.write_text(LUA % {"path": path, "file": str(run), "threads": threads})
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{args.connections}",
            f"-d{args.seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(re.findall(r"^\{.*\}$", output, re.MULTILINE)[-1])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def report(results: dict[str, list[dict]], args) -> None:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    base = median(BASELINE, "rps")
    print(
        f"\nwrk -c{args.connections}, {args.seconds} s x {args.rounds} rounds (medians), "
        f"gunicorn sync x{args.web_workers}, PostgreSQL + Redis\n"
    )
    print(f"| target | requests/s | vs {BASELINE} | p50 ms | p95 ms | p99 ms | non-2xx |")
    print("|---|---|---|---|---|---|---|")
    for name in TARGETS:
        rps = median(name, "rps")
        print(
            f"| {name} | {rps:,.0f} | {rps / base:.2f} | {median(name, 'p50_us') / 1000:.1f} "
            f"| {median(name, 'p95_us') / 1000:.1f} | {median(name, 'p99_us') / 1000:.1f} "
            f"| {sum(r['non2xx'] for r in results[name])} |"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
