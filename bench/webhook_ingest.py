# ruff: noqa: T201, S603, S607 - a command-line tool that prints and runs wrk and web servers
"""Signed webhook ingest throughput, as ratios against the FastAPI peer in the same run.

    .venv/bin/python bench/webhook_ingest.py [--seconds 15] [--connections 8] [--rounds 3]
        [--peer-dir DIR] [--peer-venv DIR] [--only TEXT ...]

Starts one web server per Otto configuration on PostgreSQL and Redis, and the FastAPI peer
(the previous system's stack, tuned: FastAPI, uvicorn x2, asyncpg, Celery), then drives
each with wrk (``apt-get install wrk``) at a fixed concurrency. Every signed target gets the
same file of byte-identical bodies, each a new call signed with the tenant's key:

- ``insert+enqueue``: one inbox insert plus one enqueue on the shared broker, the bare
  minimum of any webhook ingest (DESIGN.md §8's baseline), on the final configuration;
- ``webhook: <configuration>``: ``POST /callrail/call.completed`` with a ~1 KB body:
  signature check, tenant lookup, inbox insert, enqueue of its processing on commit. One
  target per configuration, each adding one change to the one before it (``STEPS``); the
  last is the Procfile's ``web`` (``python -m otto.web``: granian, otto/web.py), the one
  before it gunicorn as gunicorn.conf.py configures it. Then the servers tried and not
  kept (``CANDIDATES``: Django's ASGI handler under uvicorn and granian), each in front
  of the same Django, view and lean middleware;
- ``hello: <server>``: a view that touches nothing, through the full middleware: what
  the server and Django's request cycle cost before any work;
- ``peer webhook``: the peer's ``POST /callrail/call.completed``, the same work.

``--only TEXT`` keeps the targets whose name contains TEXT, plus the baseline, the
gunicorn and Procfile webhooks and the peer.

The peer is started from ``--peer-dir`` (``$BENCH_PEER_DIR``, default
``../shared/peers/fastapi-ingest`` from the checkout) with the uvicorn of
``--peer-venv`` (``$BENCH_PEER_VENV``, default ``DIR/.venv-peer``); it publishes to the
bench's Redis and writes its own database ``perf_peer`` (its ``setup_peer_db.sh``). When
either is missing the peer is skipped, with a message, and the ratios are against the
baseline only.

Nothing consumes the queues during a run. Each round runs every target once, in turn, so
drift in the machine affects them alike; the figures are medians over the rounds. It uses
its own database (``otto_bench``, created if missing) and Redis DB 12, and empties both
(``BENCH_DATABASE_URL``, ``BENCH_REDIS_URL``). DESIGN.md §8 sets the budget: the webhook at
>= 70% of insert+enqueue, p95 < 20 ms at c=8.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import hmac
import importlib.util
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

PEER_DATABASE_URL = DATABASE_URL.rsplit("/", 1)[0] + "/perf_peer"
WEBHOOK = "/callrail/call.completed"


@dataclasses.dataclass(frozen=True)
class Server:
    """One Otto configuration: a server (gunicorn, which reads gunicorn.conf.py, uvicorn or
    granian) and its app, flags and environment."""

    flags: tuple[str, ...] = ()
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    command: str = "gunicorn"
    app: str = "otto.wsgi"
    # Modules it needs beyond Otto's own dependencies (the bench extra).
    needs: tuple[str, ...] = ()


# Each step adds one change to the one before it; the last is the Procfile's web process.
STEPS = {
    "before": Server(("-k", "sync"), {"DATABASE_POOL_SIZE": "0", "BENCH_FULL_MIDDLEWARE": "1"}),
    "+ connection pool": Server(("-k", "sync"), {"BENCH_FULL_MIDDLEWARE": "1"}),
    "+ gthread, keep-alive": Server((), {"BENCH_FULL_MIDDLEWARE": "1"}),
    "+ lean webhook middleware": Server(),
    # otto/web.py: WEB_CONCURRENCY workers of WEB_THREADS threads, a pool of as many.
    "+ granian (Procfile)": Server(command="otto.web"),
}
GUNICORN = "+ lean webhook middleware"
FINAL = "+ granian (Procfile)"
PEER = "peer"

# Other servers in front of the same Django and the same view: the same processes,
# threads and pool, the lean webhook middleware (bench/asgi.py for the ASGI ones).
POOL = {"DATABASE_POOL_SIZE": "4"}
CANDIDATES = {
    # Django's ASGI handler (bench/asgi.py) runs the lean chain and the sync view in a thread.
    "ASGI, gunicorn + UvicornWorker": Server(
        ("-k", "uvicorn_worker.UvicornWorker"), app="bench.asgi", needs=("uvicorn_worker",)
    ),
    "ASGI, uvicorn": Server(
        ("--http", "httptools", "--loop", "uvloop", "--timeout-keep-alive", "5"),
        POOL,
        command="uvicorn",
        app="bench.asgi:application",
        needs=("uvicorn", "httptools", "uvloop"),
    ),
    # The Procfile's with half the threads (and pool): less for the GIL to share.
    "granian, 2 threads": Server(env={"WEB_THREADS": "2"}, command="otto.web"),
    # One thread a worker: no GIL shared, and a slow request holds its whole worker.
    "granian, 1 thread": Server(env={"WEB_THREADS": "1"}, command="otto.web"),
    "granian ASGI": Server(
        ("--interface", "asgi", "--loop", "uvloop"),
        POOL,
        command="granian",
        app="bench.asgi:application",
        needs=("uvloop",),
    ),
}
SERVERS = {**STEPS, **CANDIDATES}


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    server: str
    path: str
    signed: bool


TARGETS = [
    Target("insert+enqueue", FINAL, "/bench/insert-enqueue", False),
    *(Target(f"webhook: {step}", step, WEBHOOK, True) for step in STEPS),
    *(Target(f"webhook: {name}", name, WEBHOOK, True) for name in CANDIDATES),
    # What each server costs before any work (the view touches nothing).
    *(
        Target(f"hello: {label}", name, "/bench/hello", False)
        for name, label in {GUNICORN: "gunicorn", FINAL: "granian (Procfile)"}.items()
    ),
    *(Target(f"hello: {name}", name, "/bench/hello", False) for name in CANDIDATES),
    Target("peer webhook", PEER, WEBHOOK, True),
]
BASELINE = "insert+enqueue"
VS_GUNICORN = f"webhook: {GUNICORN}"
WARM_UP_REQUESTS = 6000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument(
        "--peer-dir",
        type=Path,
        default=Path(
            os.environ.get("BENCH_PEER_DIR") or ROOT.parent / "shared/peers/fastapi-ingest"
        ),
    )
    parser.add_argument("--peer-venv", type=Path, default=os.environ.get("BENCH_PEER_VENV"))
    parser.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="run only the targets whose name contains TEXT (repeatable); the baseline, "
        "the gunicorn and Procfile webhooks and the peer always run",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    uvicorn = peer_uvicorn(args)
    targets = [t for t in TARGETS if uvicorn or t.server != PEER]
    missing = {
        name
        for name, server in SERVERS.items()
        if any(importlib.util.find_spec(module) is None for module in server.needs)
    }
    if missing:
        print(f"skipped (pip install -e '.[bench]'): {', '.join(sorted(missing))}", file=sys.stderr)
        targets = [t for t in targets if t.server not in missing]
    if args.only:
        always = {BASELINE, VS_GUNICORN, f"webhook: {FINAL}", "peer webhook"}
        targets = [
            t for t in targets if t.name in always or any(text in t.name for text in args.only)
        ]

    args.load = [load()]
    prepare_database()
    if uvicorn:
        subprocess.run([str(args.peer_dir / "setup_peer_db.sh")], capture_output=True, check=True)
    prepared = args.seconds * 4000
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Fresh calls for the warm-up and for the run: a replayed body would be a cheaper
        # duplicate. Every target starts from empty tables, so the signed targets share
        # one file: byte-identical bodies. The run's file must outlast it (checked below).
        files = {
            signed: (
                write_requests(Path(tmp) / f"{signed}-warm.tsv", signed, WARM_UP_REQUESTS),
                write_requests(Path(tmp) / f"{signed}.tsv", signed, prepared),
            )
            for signed in (False, True)
        }
        try:
            for name in dict.fromkeys(t.server for t in targets if t.server != PEER):
                servers[name] = start_server(SERVERS[name], args.web_workers)
            if uvicorn:
                servers[PEER] = start_peer(uvicorn, args.peer_dir, args.web_workers)
            results: dict[str, list[dict]] = {t.name: [] for t in targets}
            for round_number in range(args.rounds):
                for target in targets:
                    reset_state()
                    process, port = servers[target.server]
                    warm_up, run = files[target.signed]
                    # A short warm-up so each target starts with warm connections and caches.
                    run_wrk(port, target.path, warm_up, Path(tmp), "-t1", "-c2", "-d2s")
                    cpu = server_cpu(process.pid)
                    result = run_wrk(
                        port,
                        target.path,
                        run,
                        Path(tmp),
                        "-t2",
                        f"-c{args.connections}",
                        f"-d{args.seconds}s",
                    )
                    cpu = server_cpu(process.pid) - cpu
                    result["cpu_ms"] = cpu * 1000 / max(result["requests"], 1)
                    if target.signed and result["requests"] > prepared:
                        sys.exit(f"{target.name}: more requests than prepared calls")
                    results[target.name].append(result)
                    print(
                        f"round {round_number + 1} {target.name:<34} {result['rps']:8.0f} req/s"
                        f"  p95 {result['p95_us'] / 1000:6.1f} ms"
                        f"  non-2xx {result['non2xx']}  server CPU {result['cpu_ms']:.2f} ms/req",
                        file=sys.stderr,
                    )
        finally:
            stop([process for process, _ in servers.values()])
    report(targets, results, args)


def peer_uvicorn(args) -> Path | None:
    """The peer's uvicorn, or None (with the reason printed) when it cannot run."""
    venv = args.peer_venv or args.peer_dir / ".venv-peer"
    uvicorn = Path(venv) / "bin" / "uvicorn"
    if not (args.peer_dir / "fastapi_app.py").is_file():
        print(f"peer skipped: no fastapi_app.py in {args.peer_dir} (--peer-dir)", file=sys.stderr)
        return None
    if not uvicorn.is_file():
        print(
            f"peer skipped: no {uvicorn}. Make a venv for it, e.g. `python3.12 -m venv "
            f"VENV && VENV/bin/pip install -r "
            f"{args.peer_dir}/requirements.txt`, and pass --peer-venv VENV",
            file=sys.stderr,
        )
        return None
    return uvicorn


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


def start_server(server: Server, workers: int) -> tuple[subprocess.Popen, int]:
    executable = Path(sys.executable).with_name(server.command)
    port = free_port()
    if server.command == "gunicorn":
        argv = [str(executable), server.app, "--bind", f"127.0.0.1:{port}"]
    elif server.command == "uvicorn":
        argv = [str(executable), server.app, "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--no-access-log", "--log-level", "warning"]
    elif server.command == "granian":
        argv = [str(executable), server.app, "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--no-ws", "--log-level", "warning"]
    if server.command == "otto.web":  # the Procfile's
        argv = [sys.executable, "-m", "otto.web", "--host", "127.0.0.1", "--port", str(port)]
    else:
        argv += ["--workers", str(workers)]
    web = subprocess.Popen(
        [*argv, *server.flags],
        cwd=ROOT,
        env={**ENV, "WEB_CONCURRENCY": str(workers), **server.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return wait_until_up(web, port, "/bench/hello")


def start_peer(uvicorn: Path, peer_dir: Path, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    argv = [str(uvicorn), "--app-dir", str(peer_dir), "fastapi_app:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(workers), "--no-access-log"]
    peer = subprocess.Popen(
        [*argv, "--log-level", "warning"],
        cwd=peer_dir,
        env={**os.environ, "PEER_BROKER_URL": REDIS_URL, "PEER_PG_DB": "perf_peer"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return wait_until_up(peer, port, "/hello")


def wait_until_up(process: subprocess.Popen, port: int, path: str) -> tuple[subprocess.Popen, int]:
    # Generous: on a loaded machine a gunicorn with four workers takes a while to import.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
                return process, port
        except OSError:
            time.sleep(0.2)
    stop([process])
    sys.exit(f"{process.args[0]} did not start")


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a server and its worker processes."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total + sum(server_cpu(int(child)) for child in children)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def reset_state() -> None:
    import psycopg
    import redis

    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("TRUNCATE integrations_webhookevent CASCADE")
    try:
        with psycopg.connect(PEER_DATABASE_URL, autocommit=True) as conn:
            conn.execute("TRUNCATE inbox")
    except psycopg.OperationalError:
        pass  # no peer database: the peer is skipped
    redis.Redis.from_url(REDIS_URL).flushdb()


def run_wrk(port: int, path: str, requests: Path, tmp: Path, *wrk_args: str) -> dict:
    threads = int(next(arg for arg in wrk_args if arg.startswith("-t"))[2:])
    script = tmp / "run.lua"
    script.write_text(LUA % {"path": path, "file": str(requests), "threads": threads})
    output = subprocess.run(
        ["wrk", *wrk_args, "--timeout", "5s", "-s", str(script), f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(re.findall(r"^\{.*\}$", output, re.MULTILINE)[-1])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def report(targets: list[Target], results: dict[str, list[dict]], args) -> None:
    """Medians over the rounds; each ratio is the median of the rounds' own ratios, so a
    round the machine slowed down for every target counts like any other."""

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    def ratio(name: str, other: str | None) -> str:
        if other not in results:
            return "–"
        pairs = zip(results[name], results[other], strict=True)
        return f"{statistics.median(a['rps'] / b['rps'] for a, b in pairs):.2f}"

    peer = "peer webhook"
    print(
        f"\nwrk -c{args.connections}, {args.seconds} s x {args.rounds} rounds (medians), "
        f"{args.web_workers} web workers, uvicorn x{args.web_workers} for the peer, "
        f"PostgreSQL + Redis; load average {args.load[0]} at the start, {load()} at the end\n"
    )
    print(
        f"| target | requests/s | vs {BASELINE} | vs peer | vs gunicorn | vs step before "
        "| p50 ms | p95 ms | p99 ms | server CPU ms/req | non-2xx |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    before = None
    for target in targets:
        step = ""
        if target.path == WEBHOOK and target.server in STEPS:
            step = ratio(target.name, before)
            before = target.name
        print(
            f"| {target.name} | {median(target.name, 'rps'):,.0f} "
            f"| {ratio(target.name, BASELINE)} | {ratio(target.name, peer)} "
            f"| {ratio(target.name, VS_GUNICORN)} | {step} "
            f"| {median(target.name, 'p50_us') / 1000:.1f} "
            f"| {median(target.name, 'p95_us') / 1000:.1f} "
            f"| {median(target.name, 'p99_us') / 1000:.1f} "
            f"| {median(target.name, 'cpu_ms'):.2f} "
            f"| {sum(r['non2xx'] for r in results[target.name])} |"
        )


def load() -> str:
    """The 1, 5 and 15 minute load averages (the machine is shared; say how busy it was)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
