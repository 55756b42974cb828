# ruff: noqa: T201, S603, S608 - a command-line tool that prints and runs processes
"""API latency over the bench dataset (bench/data.py), as ratios against ``me/`` in the same run.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/otto_bench \\
    .venv/bin/python bench/api_latency.py [--requests 60] [--rounds 2] [--explain 6]
        [--json results.json]

Starts the provider sandbox (its Clerk-style issuer signs the session tokens, RS256, as in
the tests) and gunicorn (2 sync workers, the Procfile's ``web``) with production-like
settings (``ENVIRONMENT=staging``, DEBUG off, throttling on with rates no run reaches), on
the database bench/data.py loaded. For the largest tenant and the median one, as their
manager, it requests in turn, one request at a time on a kept-alive connection:

- ``me/`` (the baseline: authentication, tenant binding, throttles, one small body);
- every KPI (``metrics/overview/``, ``booking-trend/``, ``top-objections/``, ``reps/``,
  ``recovery/``) over the last 30 and 90 days of the tenant's calendar;
- ``calls/``, ``leads/``, ``appointments/``, ``tasks/`` and ``threads/`` with
  ``page_size=50``: no filter, each filter alone and common combinations, and full-text
  searches on calls; for the largest tenant also ``calls/`` as a sales rep and ``tasks/``
  as a CSR (their role scopes).

Each round requests every target ``--requests`` times after 3 warm-up requests; the
figures pool the rounds. Every response carries its query count (bench/queries.py); each
list is also requested once with ``page_size=10`` to show the count does not grow with the
page. The ``--explain`` slowest targets are requested once more with the slowest query of
the request run under ``EXPLAIN (ANALYZE, BUFFERS)``; the plans are printed at the end.
DESIGN.md §8: a page of 50 p95 < 25 ms, any KPI over 90 days p95 < 60 ms.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import start, wait_http  # noqa: E402 -- needs the repository on sys.path
from bench.webhook_ingest import DATABASE_URL, ENV, free_port  # noqa: E402

KPIS = ["overview", "booking-trend", "top-objections", "reps", "recovery"]
LIST_BUDGET_MS = 25
KPI_BUDGET_MS = 60


@dataclass
class Target:
    name: str
    tenant: str
    path: str
    token: str
    kind: str  # baseline | kpi | list
    days: int | None = None
    samples: list[float] = field(default_factory=list)
    queries: int | None = None
    queries_page10: int | None = None
    status: int | None = None

    def percentile(self, p: float) -> float:
        if self.status not in (None, 200):
            return float("inf")
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60, help="per target and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--explain", type=int, default=6, help="plans of the N slowest")
    parser.add_argument("--only", default="", help="run only targets whose name has this")
    parser.add_argument("--json", type=Path, help="write every figure here too")
    args = parser.parse_args()

    explain_dir = tempfile.mkdtemp(prefix="otto-bench-explain-")
    sandbox_port, web_port = free_port(), free_port()
    env = {
        **ENV,
        "SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "BENCH_QUERIES": "1",
        "BENCH_EXPLAIN_DIR": explain_dir,
        # Throttling stays on (its Redis counters are part of every request's cost), at
        # rates the run never reaches.
        "RATE_LIMIT_USER": "1000000/minute",
        "RATE_LIMIT_TENANT": "1000000/minute",
    }
    tenants = pick_tenants()
    sandbox = start([sys.executable, "manage.py", "sandbox"], env)
    web = start(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "otto.wsgi",
            "--bind",
            f"127.0.0.1:{web_port}",
            "--workers",
            "2",
        ],
        env,
    )
    try:
        wait_http(f"{env['SANDBOX_URL']}/_sandbox/routes")
        wait_http(f"{env['PUBLIC_BASE_URL']}/health")
        targets = build_targets(tenants, env["SANDBOX_URL"])
        if args.only:
            targets = [t for t in targets if args.only in t.name or t.kind == "baseline"]
        conn = http.client.HTTPConnection("127.0.0.1", web_port, timeout=60)
        load_before = os.getloadavg()
        started = time.monotonic()
        for round_number in range(args.rounds):
            for target in targets:
                measure(conn, target, args.requests)
            print(f"round {round_number + 1} done", file=sys.stderr)
        for target in targets:
            if target.kind == "list":
                target.queries_page10 = count_queries(conn, target, 10)
        elapsed = time.monotonic() - started
        load_after = os.getloadavg()
        slowest = sorted(
            (t for t in targets if t.kind != "baseline" and t.status == 200),
            key=lambda t: -t.percentile(95),
        )[: args.explain]
        # The figures first: a plan that takes gunicorn's timeout must not lose them.
        report(targets, tenants, args, load_before, load_after, elapsed)
        sys.stdout.flush()
        for target in slowest:
            try:
                request(conn, target.path, target.token, {"X-Bench-Explain": slug(target)})
            except (http.client.HTTPException, OSError):
                conn.close()
    finally:
        for process in (web, sandbox):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    print("\n## Plans of the slowest queries\n")
    for target in slowest:
        plan = Path(explain_dir) / f"{slug(target)}.txt"
        if plan.exists():
            print(f"### {target.tenant}: {target.name} (p95 {target.percentile(95):.1f} ms)\n")
            print("```\n" + plan.read_text().strip() + "\n```\n")
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "name": t.name,
                        "tenant": t.tenant,
                        "kind": t.kind,
                        "p50": t.percentile(50),
                        "p95": t.percentile(95),
                        "p99": t.percentile(99),
                        "queries": t.queries,
                        "queries_page10": t.queries_page10,
                    }
                    for t in targets
                ],
                indent=1,
            )
        )


def slug(target: Target) -> str:
    return "".join(c if c.isalnum() else "_" for c in f"{target.tenant}_{target.name}")[:100]


# --- the tenants and what to ask for -----------------------------------------------------------


def pick_tenants() -> dict[str, dict]:
    """The tenant with the most calls and the median one, with ids their filters use."""
    import psycopg

    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        ranked = conn.execute(
            "SELECT c.id, c.slug, c.clerk_org_id, c.timezone, count(k.id) AS n "
            "FROM otto_company c JOIN calls_call k ON k.company_id = c.id "
            "WHERE c.slug LIKE 'bench-%%' GROUP BY c.id ORDER BY n DESC, c.id"
        ).fetchall()
        if not ranked:
            sys.exit("no bench dataset here: run python -m bench.data first")
        picked = {"largest": ranked[0], "median": ranked[len(ranked) // 2]}
        tenants = {}
        for label, (company, _slug, org, zone, calls) in picked.items():

            def one(sql: str, *params: object, company: int = company) -> object:
                row = conn.execute(sql, (company, *params)).fetchone()
                return row[0] if row else None

            def member(role: str, company: int = company) -> tuple[int, str]:
                row = conn.execute(
                    "SELECT u.id, u.clerk_user_id FROM otto_membership m JOIN otto_user u "
                    "ON u.id = m.user_id WHERE m.company_id = %s AND m.role = %s "
                    "ORDER BY u.id LIMIT 1",
                    (company, role),
                ).fetchone()
                return row[0], row[1]

            tenants[label] = {
                "company": company,
                "org": org,
                "timezone": zone,
                "calls": calls,
                "manager": member("manager"),
                "csr": member("csr"),
                "rep": member("sales_rep"),
                "contact": one(
                    "SELECT contact_id FROM calls_call WHERE company_id = %s "
                    "GROUP BY contact_id ORDER BY count(*) DESC, contact_id LIMIT 1"
                ),
                "tracking": one(
                    "SELECT number FROM otto_phonenumber WHERE company_id = %s ORDER BY number"
                ),
                "thread_contact": one(
                    "SELECT contact_id FROM messaging_thread WHERE company_id = %s "
                    "ORDER BY last_message_at DESC LIMIT 1"
                ),
                "thread_phone": one(
                    "SELECT phone FROM messaging_thread WHERE company_id = %s "
                    "ORDER BY last_message_at DESC LIMIT 1"
                ),
                "surname": "Smith",
            }
    return tenants


def mint(sandbox_url: str, sub: str, org: str, role: str) -> str:
    body = json.dumps({"sub": sub, "org_id": org, "org_role": role, "lifetime": 7200}).encode()
    host, port = sandbox_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/clerk/tokens", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = json.loads(response.read())
    if response.status != 201:
        sys.exit(f"the sandbox refused a token: {data}")
    return str(data["token"])


def build_targets(tenants: dict[str, dict], sandbox_url: str) -> list[Target]:
    targets = []
    for label, t in tenants.items():
        token = mint(sandbox_url, t["manager"][1], t["org"], "admin")
        today = datetime.datetime.now(ZoneInfo(t["timezone"])).date()
        week_ago = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=7)).isoformat()
        month = {"date_from": (today - datetime.timedelta(days=29)).isoformat()}
        month["date_to"] = today.isoformat()
        csr, rep = t["csr"][0], t["rep"][0]

        def add(
            name: str,
            path: str,
            kind: str,
            params: dict,
            tok: str = token,
            label: str = label,
            **kw,
        ) -> None:
            query = urlencode(params, doseq=True)
            url = f"/api/v1/{path}{'?' + query if query else ''}"
            targets.append(Target(name, label, url, tok, kind, **kw))

        add("me/", "me/", "baseline", {})
        for days in (30, 90):
            window = {
                "date_from": (today - datetime.timedelta(days=days - 1)).isoformat(),
                "date_to": today.isoformat(),
            }
            for kpi in KPIS:
                add(f"metrics/{kpi}/ {days} d", f"metrics/{kpi}/", "kpi", window, days=days)

        lists: dict[str, list[dict]] = {
            "calls/": [
                {},
                {"answered": "false"},
                {"direction": "inbound"},
                {"stage": "done"},
                {"contact": t["contact"]},
                {"handled_by": csr},
                {"tracking_number": t["tracking"]},
                {"tag": "emergency"},
                {"started_after": week_ago},
                {"objection": "price"},
                {"booking_status": "booked"},
                {"qualified": "true"},
                {"booked": "true"},
                {"answered": "true", "direction": "inbound", "started_after": week_ago},
                {"objection": "price", "booked": "false"},
                {"handled_by": csr, "booked": "true"},
                {"stage": "failed"},
                {"search": "furnace"},
                {"search": '"water heater"'},
                {"search": "warranty"},
                {"search": t["surname"]},
                {"search": "furnace", "answered": "true", "started_after": week_ago},
            ],
            "leads/": [
                {},
                {"status": "qualified_booked"},
                {"assigned_rep": rep},
                {"unassigned": "true"},
                {"active": "true"},
                {"source": "Yelp"},
                month,
                {"search": t["surname"]},
                {"status": ["hot", "warm"], "active": "true"},
                {"assigned_rep": rep, "status": "qualified_booked"},
            ],
            "appointments/": [
                {},
                month,
                {"assigned_rep": rep},
                {"status": "scheduled"},
                {"outcome": "won"},
                {"unassigned": "true"},
                {"assigned_rep": rep, **month},
                {"status": "completed", "outcome": "won"},
                {"search": t["surname"]},
            ],
            "tasks/": [
                {},
                {"status": "open"},
                {"overdue": "true"},
                {"assignee": rep},
                {"type": "send_quote"},
                {"source": "ai"},
                {"due_from": month["date_from"], "due_to": month["date_to"]},
                {"status": "open", "assignee": rep},
                {"status": "open", "type": "call_back"},
                {"search": t["surname"]},
            ],
            "threads/": [
                {},
                {"unread": "true"},
                {"contact": t["thread_contact"]},
                {"phone": t["thread_phone"]},
            ],
        }
        for path, variants in lists.items():
            for params in variants:
                shown = urlencode(params, doseq=True) or "(no filter)"
                add(f"{path} {shown}", path, "list", {**params, "page_size": 50})
        if label == "largest":
            rep_token = mint(sandbox_url, t["rep"][1], t["org"], "rep")
            csr_token = mint(sandbox_url, t["csr"][1], t["org"], "csr")
            add("calls/ as a sales rep", "calls/", "list", {"page_size": 50}, rep_token)
            add("tasks/ as a CSR", "tasks/", "list", {"page_size": 50}, csr_token)
            add("metrics/overview/ 90 d as a sales rep", "metrics/overview/", "kpi",
                {"date_from": (today - datetime.timedelta(days=89)).isoformat(),
                 "date_to": today.isoformat()}, rep_token, days=90)  # fmt: skip
    return targets


# --- measuring -----------------------------------------------------------------------------------


def request(
    conn: http.client.HTTPConnection, path: str, token: str, extra: dict | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}", **(extra or {})}
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    return response.status, dict(response.getheaders()), body


def measure(conn: http.client.HTTPConnection, target: Target, n: int) -> None:
    try:
        for _ in range(3):
            status, headers, body = request(conn, target.path, target.token)
    except (http.client.HTTPException, OSError) as exc:
        # gunicorn killed the worker at its timeout (30 s): the request never finished.
        conn.close()
        status, headers, body = 0, {}, repr(exc).encode()
    target.status = status
    if status != 200:
        # Reported as a failure; one more request would only repeat it.
        print(f"{target.tenant} {target.name}: {status} {body[:200]!r}", file=sys.stderr)
        target.samples.append(float("nan"))
        return
    target.queries = int(headers.get("X-Query-Count", -1))
    for _ in range(n):
        started = time.perf_counter()
        request(conn, target.path, target.token)
        target.samples.append((time.perf_counter() - started) * 1000)


def count_queries(conn: http.client.HTTPConnection, target: Target, page_size: int) -> int:
    path = target.path.replace("page_size=50", f"page_size={page_size}")
    _, headers, _ = request(conn, path, target.token)
    return int(headers.get("X-Query-Count", -1))


# --- the report ----------------------------------------------------------------------------------


def report(
    targets: list[Target],
    tenants: dict[str, dict],
    args: argparse.Namespace,
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
    elapsed: float,
) -> None:
    print(
        f"\n{args.rounds} rounds x {args.requests} requests a target, one at a time, gunicorn "
        f"sync x2; {elapsed:.0f} s; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after ({os.cpu_count()} CPUs)\n"
    )
    for label, tenant in tenants.items():
        mine = [t for t in targets if t.tenant == label]
        base = next(t for t in mine if t.kind == "baseline")
        b50, b95 = base.percentile(50), base.percentile(95)
        print(f"### {label} tenant ({tenant['calls']:,} calls, {tenant['timezone']})\n")
        print("| target | p50 ms | p95 ms | p99 ms | p50 × me/ | p95 × me/ | queries "
              "(page 50 / 10) | budget |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for t in mine:
            if t.status != 200:
                failure = f"HTTP {t.status}" if t.status else "no answer in 30 s"
                print(f"| {t.name} | {failure} | | | | | | **fails** |")
                continue
            budget = {"kpi": KPI_BUDGET_MS, "list": LIST_BUDGET_MS}.get(t.kind)
            verdict = ""
            if budget is not None and (t.kind == "list" or t.days == 90):
                verdict = "ok" if t.percentile(95) < budget else f"**over {budget} ms**"
            queries = f"{t.queries}" + (
                f" / {t.queries_page10}" if t.queries_page10 is not None else ""
            )
            if t.queries_page10 is not None and t.queries_page10 != t.queries:
                queries += " **grows**"
            print(
                f"| {t.name} | {t.percentile(50):.1f} | {t.percentile(95):.1f} | "
                f"{t.percentile(99):.1f} | {t.percentile(50) / b50:.1f} | "
                f"{t.percentile(95) / b95:.1f} | {queries} | {verdict} |"
            )
        print()
    over = [
        t
        for t in targets
        if (t.kind == "list" and t.percentile(95) >= LIST_BUDGET_MS)
        or (t.kind == "kpi" and t.days == 90 and t.percentile(95) >= KPI_BUDGET_MS)
    ]
    print(f"Over budget: {len(over)} of {len([t for t in targets if t.kind != 'baseline'])}.")
    print(
        "Baseline me/ p50/p95: "
        + ", ".join(
            f"{t.tenant} {t.percentile(50):.1f}/{t.percentile(95):.1f} ms"
            for t in targets
            if t.kind == "baseline"
        )
    )
    _ = statistics  # kept for readers extending the report


if __name__ == "__main__":
    main()
