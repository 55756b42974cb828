# ruff: noqa: T201, S311 - a command-line tool that prints its figures; callers need no crypto
"""A burst of missed calls, texted back: webhook → Twilio request, on real workers.

    .venv/bin/python bench/recovery_burst.py [--tenants 50] [--calls-per-tenant 10]
        [--clients 4] [--workers 2] [--timeout 300]

Creates ``--tenants`` tenants (a Twilio number, a CallRail company id and signing key of
its own, recovery on), starts the provider sandbox, gunicorn (gunicorn.conf.py) and one
default qcluster of ``--workers`` workers (bench/pipeline.py's ``stack`` and ``cluster``),
on ``BENCH_DATABASE_URL``/``BENCH_REDIS_URL`` like the other benches (it empties both).

Each tenant gets ``--calls-per-tenant`` missed inbound calls (unanswered, no recording)
from distinct callers, created in the sandbox's CallRail. Then the burst: ``--clients``
concurrent HTTP clients POST every call's signed ``call.completed`` webhook to gunicorn as
fast as they can, and the bench notes each one's send time. The cluster processes each
event, ingests the call from the sandbox's CallRail API, starts its recovery and sends the
text-back through the gate to the sandbox's Twilio, which records each request's arrival
(``GET /_sandbox/requests``). The bench waits until every caller has had a text-back
request (or ``--timeout`` seconds) and reports the count texted, p50/p95/p99/max of
(Twilio request − webhook send), the burst's duration and the machine's load (``uptime``),
then where the time went, per call, from the rows' timestamps: the webhook's ingest
(send → stored), the default queue's wait and processing (stored → processed), ingest
(processed → text-back created), and the followups queue's wait (created → claimed) and
the send (claimed → Twilio).

Quiet hours stay on. The gate defers a text outside 08:00–21:00 in the recipient's zone,
taken from the number, so the callers are numbers of cities where it is now between 09:00
and 20:00 (``CITIES``; some city is, whatever the hour), and each tenant's zone is its
callers' city's. Before the burst every caller is checked against the gate itself
(``messaging.gate.next_window``): the bench refuses to run if one would be deferred.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import phonenumbers  # noqa: E402
from phonenumbers import timezone as phone_timezones  # noqa: E402

from bench.pipeline import cluster, post, reset_state, stack, task_stats  # noqa: E402
from bench.webhook_ingest import DATABASE_URL, manage, prepare_database  # noqa: E402
from integrations.callrail.signature import sign_callrail  # noqa: E402
from integrations.sandbox.config import CREDENTIALS  # noqa: E402

# Numbers of one city each (an E.164 prefix whose numbers have one time zone), around
# the clock: at any hour at least one is between 09:00 and 20:00. No US state here has
# a window stricter than the default (messaging.gate.STATE_WINDOWS).
CITIES = {
    "+1212": "America/New_York",
    "+1312": "America/Chicago",
    "+1303": "America/Denver",
    "+1213": "America/Los_Angeles",
    "+1808": "Pacific/Honolulu",
    "+4420": "Europe/London",
    "+4930": "Europe/Berlin",
    "+5511": "America/Sao_Paulo",
    "+813": "Asia/Tokyo",
    "+612": "Australia/Sydney",
    "+649": "Pacific/Auckland",
}
# Local hours a city's callers must be in: an hour inside the gate's 08:00–21:00 at each
# end, so a run of minutes stays inside it.
DAYTIME = (9, 20)
WEBHOOK = "/callrail/call.completed"
MAX_CALLS = 900
TWILIO_CREATE = "twilio.messages.create"
TASKS = {
    "integrations.tasks.process_webhook_event": "webhook event",
    "calls.tasks.ingest_call": "ingest",
    "messaging.tasks.deliver_message": "send",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--calls-per-tenant", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    if args.tenants * args.calls_per_tenant > MAX_CALLS:
        # Each call makes two sandbox requests (CallRail, Twilio); the sandbox keeps 2,000.
        sys.exit(f"at most {MAX_CALLS} calls: the sandbox's request log would drop some")

    cities = daytime_cities(datetime.now(UTC))
    if not cities:
        sys.exit("no city in CITIES is in daytime now")
    tenants = [
        {
            "slug": f"burst-{index:02d}",
            "callrail_company": f"COM{index:04d}burst",
            "signing_key": f"burst-signing-key-{index:02d}".ljust(32, "0"),
            "twilio_number": f"+1415555{2000 + index:04d}",
            "zone": CITIES[cities[index % len(cities)]],
            "prefix": cities[index % len(cities)],
        }
        for index in range(args.tenants)
    ]
    callers = distinct_callers([t["prefix"] for t in tenants], args.calls_per_tenant)
    for tenant, numbers in zip(tenants, callers, strict=True):
        tenant["callers"] = numbers
    prepare_database()
    create_tenants(tenants)

    with stack() as env:
        reset_state(env)
        calls = create_calls(env, tenants)
        bodies = [webhook(call) for call in calls]
        stats_dir = tempfile.mkdtemp(prefix="otto-bench-tasks-")
        with cluster({**env, "BENCH_TASK_STATS": stats_dir}, args.workers):
            load_before = uptime()
            sent, burst_seconds = burst(env["PUBLIC_BASE_URL"] + WEBHOOK, bodies, args.clients)
            arrived = wait_for_texts(env, {call["customer_phone_number"] for call in calls}, args)
            load_after = uptime()
        stages = stage_times(sent)
        tasks = task_stats(stats_dir)
        reset_state(env)
    report(args, calls, sent, arrived, burst_seconds, (load_before, load_after), cities)
    report_stages(stages, sent, arrived)
    report_tasks(tasks)


def daytime_cities(now: datetime) -> list[str]:
    return [
        prefix
        for prefix, zone in CITIES.items()
        if DAYTIME[0] <= now.astimezone(ZoneInfo(zone)).hour < DAYTIME[1]
    ]


def distinct_callers(prefixes: list[str], per_tenant: int) -> list[list[str]]:
    """``per_tenant`` valid numbers per prefix given, all distinct, each of the city's zone."""
    rng = random.Random(f"{time.time()}")  # new callers each run: no 24-hour cooldown
    seen: set[str] = set()
    found: list[list[str]] = []
    for prefix in prefixes:
        numbers: list[str] = []
        for _ in range(100_000):
            if len(numbers) == per_tenant:
                break
            digits = "".join(rng.choice("23456789") for _ in range(rng.randint(6, 9)))
            number = prefix + digits
            parsed = phonenumbers.parse(number)
            zones = phone_timezones.time_zones_for_number(parsed)
            if (
                number not in seen
                and phonenumbers.is_valid_number(parsed)
                and zones == (CITIES[prefix],)
            ):
                seen.add(number)
                numbers.append(number)
        if len(numbers) < per_tenant:
            sys.exit(f"could not make {per_tenant} numbers of {prefix}")
        found.append(numbers)
    return found


def create_tenants(tenants: list[dict]) -> None:
    """The tenants, as the admin would set them up; then every caller through the gate."""
    script = f"""
import datetime, json
from django.utils import timezone
from messaging.gate import next_window
from otto.models import CallRailCompany, Company
tenants = json.loads({json.dumps(json.dumps(tenants))})
for t in tenants:
    company, _ = Company.objects.update_or_create(slug=t["slug"], defaults=dict(
        name="Burst " + t["slug"][-2:], timezone=t["zone"], twilio_number=t["twilio_number"],
        recovery_enabled=True, callrail_account_id="{CREDENTIALS["CALLRAIL_ACCOUNT_ID"]}",
        callrail_api_key="{CREDENTIALS["CALLRAIL_API_KEY"]}",
        callrail_signing_key=t["signing_key"], is_active=True))
    CallRailCompany.objects.get_or_create(
        callrail_company_id=t["callrail_company"], defaults={{"company": company}})
    later = timezone.now() + datetime.timedelta(minutes=30)
    for number in t["callers"]:
        for when in (timezone.now(), later):
            if next_window(company, number, when) is not None:
                raise SystemExit(f"{{number}} would be deferred by quiet hours at {{when}}")
"""
    manage("shell", "-c", script)


def create_calls(env: dict[str, str], tenants: list[dict]) -> list[dict]:
    """Each tenant's missed calls in the sandbox's CallRail (no webhook yet)."""
    calls = []
    for tenant in tenants:
        for number in tenant["callers"]:
            [made] = post(
                f"{env['SANDBOX_URL']}/_sandbox/callrail/calls",
                {
                    "account_id": CREDENTIALS["CALLRAIL_ACCOUNT_ID"],
                    "company_id": tenant["callrail_company"],
                    "company_name": "Burst " + tenant["slug"][-2:],
                    "tracking_number": tenant["twilio_number"],
                    "scenario": "booked",
                    "missed": True,
                    "customer_phone_number": number,
                    "customer_state": "",  # the area code's state, as the gate reads it
                },
            )["calls"]
            calls.append(made | tenant | {"customer_phone_number": number})
    return calls


def webhook(call: dict) -> tuple[str, bytes, dict[str, str]]:
    """The signed post-call webhook CallRail sends for a missed call (a trigger: ingest
    reads the call from the API)."""
    body = {
        "resource_id": call["id"],
        "id": call["legacy_id"],
        "company_resource_id": call["callrail_company"],
        "answered": False,
        "voicemail": False,
        "call_type": "missed",
        "direction": "inbound",
        "duration": "9",
        "recording": None,
        "customer_phone_number": call["customer_phone_number"],
        "callernum": call["customer_phone_number"],
        "tracking_phone_number": call["twilio_number"],
        "trackingnum": call["twilio_number"],
        "start_time": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "Signature": sign_callrail(raw, call["signing_key"]),
    }
    return call["customer_phone_number"], raw, headers


def burst(
    url: str, bodies: list[tuple[str, bytes, dict[str, str]]], clients: int
) -> tuple[dict[str, float], float]:
    """POST every webhook from ``clients`` keep-alive clients; each caller's send time."""
    sent: dict[str, float] = {}
    chunks = [bodies[index::clients] for index in range(clients)]

    def client(chunk: list[tuple[str, bytes, dict[str, str]]]) -> None:
        with httpx.Client(timeout=30) as http:
            for caller, body, headers in chunk:
                at = time.time()
                response = http.post(url, content=body, headers=headers)
                if response.status_code != 200:
                    sys.exit(f"webhook answered {response.status_code}: {response.text}")
                sent[caller] = at

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, chunks))
    return sent, time.monotonic() - started


def wait_for_texts(env: dict[str, str], callers: set[str], args) -> dict[str, float]:
    """Each caller's first text-back request at the sandbox's Twilio (arrival time)."""
    deadline = time.monotonic() + args.timeout
    arrived: dict[str, float] = {}
    while time.monotonic() < deadline:
        with httpx.Client(timeout=30) as http:
            rows = http.get(
                f"{env['SANDBOX_URL']}/_sandbox/requests", params={"endpoint": TWILIO_CREATE}
            ).json()["requests"]
        for row in rows:
            to = dict(parse_qsl(row["body"])).get("To", "")
            if to in callers:
                arrived[to] = min(arrived.get(to, row["at"]), row["at"])
        if len(arrived) == len(callers):
            break
        time.sleep(1)
    return arrived


def stage_times(sent: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per caller, when its webhook was stored and processed, its text-back created and
    claimed for sending (Unix seconds, from the rows)."""
    import psycopg

    query = """
        SELECT m.to_number, extract(epoch FROM e.received_at), extract(epoch FROM e.processed_at),
               extract(epoch FROM m.created_at), extract(epoch FROM m.claimed_at)
        FROM messaging_message m
        JOIN messaging_missedcallrecovery r ON r.id = m.recovery_id
        JOIN calls_call c ON c.id = r.call_id
        JOIN integrations_webhookevent e
          ON e.provider = 'callrail' AND (e.body::jsonb ->> 'resource_id') = c.external_id
        WHERE m.kind = 'recovery'
    """
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        rows = conn.execute(query).fetchall()
    names = ("stored", "processed", "created", "claimed")
    return {
        row[0]: {name: float(value) for name, value in zip(names, row[1:], strict=True) if value}
        for row in rows
        if row[0] in sent
    }


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1]}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()  # noqa: S607


def report(args, calls, sent, arrived, burst_seconds, loads, cities) -> None:
    latencies = [arrived[caller] - sent[caller] for caller in arrived if caller in sent]
    figures = percentiles(latencies)
    missing = len(calls) - len(arrived)
    print(
        f"\n{len(calls)} missed calls across {args.tenants} tenants, {args.clients} clients, "
        f"{args.workers} workers; callers in {', '.join(CITIES[c] for c in cities)}"
    )
    print(f"load before: {loads[0]}\nload after:  {loads[1]}\n")
    print("| texted | burst | p50 | p95 | p99 | max | not texted (timeout) |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {len(arrived)} / {len(calls)} | {burst_seconds:.1f} s | "
        + " | ".join(f"{figures.get(k, 0):.1f} s" for k in ("p50", "p95", "p99", "max"))
        + f" | {missing} |"
    )


def report_stages(
    stages: dict[str, dict[str, float]], sent: dict[str, float], arrived: dict[str, float]
) -> None:
    """Where each call's time went: consecutive timestamps, send → Twilio."""
    steps = (
        ("webhook ingest (send → stored)", "sent", "stored"),
        ("default queue + event (stored → processed)", "stored", "processed"),
        ("ingest queue + ingest (processed → text created)", "processed", "created"),
        ("followups queue wait (created → claimed)", "created", "claimed"),
        ("send (claimed → Twilio request)", "claimed", "twilio"),
    )
    print("\n| segment | p50 | p95 | max |")
    print("|---|---|---|---|")
    for name, start, end in steps:
        values = [
            times[end] - times[start]
            for caller, row in stages.items()
            if caller in arrived
            for times in [row | {"sent": sent[caller], "twilio": arrived[caller]}]
            if start in times and end in times
        ]
        figures = percentiles(values)
        print(
            f"| {name} | "
            + " | ".join(f"{figures.get(k, 0):.2f} s" for k in ("p50", "p95", "max"))
            + " |"
        )


def report_tasks(tasks: list[dict]) -> None:
    """Each task's own wall time in its worker (bench/apps.py)."""
    print("\n| task | count | wall ms p50 | p95 | mean | total, s of a worker's time |")
    print("|---|---|---|---|---|---|")
    for func, name in TASKS.items():
        values = [line["wall_ms"] for line in tasks if line["func"] == func]
        if values:
            figures = percentiles(values)
            print(
                f"| {name} (`{func}`) | {len(values)} | {statistics.median(values):.0f} "
                f"| {figures['p95']:.0f} | {statistics.mean(values):.0f} "
                f"| {sum(values) / 1000:.1f} |"
            )
    others = sorted({line["func"] for line in tasks} - set(TASKS))
    if others:
        counts = {f: sum(1 for line in tasks if line["func"] == f) for f in others}
        print("\nother tasks run: " + ", ".join(f"{f} ({n})" for f, n in counts.items()))


if __name__ == "__main__":
    main()
