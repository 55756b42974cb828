# ruff: noqa: T201, S311 - a command-line tool that prints; seeded pseudo-random data, not secrets
"""A realistic, deterministic dataset for the API benchmarks, loaded with PostgreSQL ``COPY``.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/otto_bench \\
    .venv/bin/python -m bench.data --calls 1000000 --tenants 100 [--seed 1] [--truncate]

What it makes (docs/performance.md, "The dataset", says it for people):

- ``--tenants`` companies whose call volumes follow a Zipf law (s = 1: the largest has about
  a fifth of all calls, the median about 0.4 %), each in a US time zone, with one or two
  managers, CSRs and sales reps in proportion to its volume (Clerk ids, so the benchmark can
  mint tokens for them), its tracking numbers and its Twilio number;
- ``--calls`` calls over the last 18 months, more recent months busier, weekdays busier than
  weekends, at business hours in the tenant's zone: 85 % inbound (72 % answered, 8 %
  voicemail, 20 % missed), 15 % outbound (65 % answered); a third of the calls come from a
  contact who called before;
- one contact per phone number, one lead per contact with its status history (one row per
  change, as the apply stage writes them), closed won or lost when its appointment was;
- for every answered call and voicemail a current analysis (3 % also an older version, 1 % a
  person's override), with objections from the fixed taxonomy, an SOP score and pending
  actions; an appointment for every booked call; a task per pending action;
- for missed inbound calls a missed-call recovery (one per contact per 24 hours, as the
  exclusion constraint wants), its thread and texts and, for some, the customer's reply;
  manual SMS threads for a few more contacts;
- transcripts (and the calls' search vectors, as ``calls.search.index_call`` computes them)
  for the analysed calls of the last ``--transcript-days`` (90): the retention window of
  transcripts; older calls keep their analysis but no text.

Rows are generated tenant by tenant from ``random.Random(f"{seed}:{tenant}")``: the same
seed, sizes and ``--now`` give the same rows. Ids continue each table's sequence, so the
loader also works in a database that has rows (the test database). :func:`load` returns a
summary and, with ``keep=True``, the generated facts per tenant, which the CI check
(tests/bench/) recomputes the KPIs from.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent

ZONES = [
    ("America/New_York", ["212", "305", "404", "617", "704", "813"]),
    ("America/Chicago", ["312", "214", "512", "615", "713", "816"]),
    ("America/Denver", ["303", "720", "801", "505"]),
    ("America/Phoenix", ["602", "480", "520"]),
    ("America/Los_Angeles", ["213", "415", "503", "619", "206", "702"]),
]
ZONE_WEIGHTS = [0.42, 0.28, 0.1, 0.06, 0.14]
HISTORY_DAYS = 548  # 18 months
# Local hour of a call → weight: the office's day, busiest mid-morning and early afternoon.
HOUR_WEIGHTS = [0, 0, 0, 0, 0, 0, 1, 4, 9, 12, 12, 11, 8, 10, 11, 10, 8, 5, 3, 2, 1, 1, 0, 0]
WEEKDAY_WEIGHTS = [1.0, 0.95, 0.95, 0.95, 0.9, 0.45, 0.2]  # Monday first

SERVICES = [
    ("furnace repair", "furnace", "the furnace is blowing cold air"),
    ("AC repair", "air conditioner", "the air conditioner stopped cooling"),
    ("AC installation", "new AC unit", "we want a quote for a new AC unit"),
    ("water heater replacement", "water heater", "the water heater is leaking"),
    ("drain cleaning", "kitchen drain", "the kitchen drain is clogged again"),
    ("roof repair", "roof", "there is a leak in the roof after the storm"),
    ("panel upgrade", "electrical panel", "the breaker panel keeps tripping"),
    ("duct cleaning", "ducts", "the ducts have not been cleaned in years"),
    ("heat pump service", "heat pump", "the heat pump makes a grinding noise"),
    ("sewer line inspection", "sewer line", "the basement smells like sewage"),
]
SOURCES = ["Google Ads", "Google Organic", "Direct", "Yelp", "Facebook", "Referral", "Angi"]
TAGS = ["new customer", "existing customer", "emergency", "warranty", "spam", "follow up"]
FIRST = "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara \
Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Lisa Matthew Nancy Anthony \
Betty Mark Sandra Paul Ashley Steven Emily Andrew Donna Joshua Michelle Kevin Carol Brian \
Amanda Ronald Melissa Timothy Deborah Jason Stephanie Jeffrey Rebecca Ryan Laura".split()
LAST = "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez \
Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White \
Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres \
Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts \
Okafor Kowalski Lindqvist Castellano Abernathy".split()
STREETS = "Oak Maple Cedar Pine Elm Lake Hill Park Washington Lincoln Sunset Ridge".split()
CATEGORIES = ["price", "timing", "decision_maker", "competitor", "trust", "scope", "financing"]
CATEGORY_WEIGHTS = [34, 22, 14, 10, 7, 6, 5]
QUOTES = {
    "price": "That sounds expensive, can you do any better on the price?",
    "timing": "I can't do this week, we're travelling.",
    "decision_maker": "I need to talk to my husband before we decide.",
    "competitor": "Another company quoted us less last week.",
    "trust": "How do I know you won't find more problems once you're here?",
    "scope": "I only want the repair, not a whole new system.",
    "financing": "Do you offer any financing or payment plans?",
}
ACTIONS = ["call_back", "send_quote", "send_estimate", "confirm_appointment", "send_info",
           "follow_up_call", "schedule_visit", "verify_insurance", "setup_financing"]  # fmt: skip
SOP_STEPS = ["greeting", "name", "address", "problem", "urgency", "price", "booking", "recap"]


def zipf_shares(tenants: int, s: float = 1.0) -> list[float]:
    weights = [1 / (rank**s) for rank in range(1, tenants + 1)]
    total = sum(weights)
    return [w / total for w in weights]


def calls_per_tenant(calls: int, tenants: int) -> list[int]:
    """Each tenant's call count (largest first), summing exactly to ``calls``."""
    counts = [max(1, int(share * calls)) for share in zipf_shares(tenants)]
    counts[0] += calls - sum(counts)
    return counts


# --- generic COPY of model rows -------------------------------------------------------------


class Table:
    """A model's table for ``COPY``: every concrete column the database does not generate,
    the model's default where a row leaves one out, JSON serialised; ids continue the
    table's sequence."""

    def __init__(self, model: Any) -> None:
        from django.db import models

        self.model = model
        self.name = model._meta.db_table
        self.columns: list[str] = []
        self.defaults: list[Any] = []
        self.json: list[bool] = []
        written = [f for f in model._meta.concrete_fields if not f.generated]
        for f in written:
            self.columns.append(f.column)
            if f.primary_key:
                default: Any = None
            elif f.has_default():
                default = f.get_default()
            elif isinstance(f, models.FileField) or (f.blank and not f.null):
                default = ""
            elif f.null:
                default = None
            else:
                default = _REQUIRED
            self.defaults.append(default)
            self.json.append(isinstance(f, models.JSONField))
        self.attnames = [f.attname for f in written]
        self.rows: list[tuple[Any, ...]] = []
        self.next_id = 0
        self.count = 0

    def start(self, cursor: Any) -> None:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {self.name}")  # noqa: S608
        self.next_id = cursor.fetchone()[0] + 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def add(self, **values: Any) -> int:
        row_id = values.setdefault("id", self.new_id())
        row = []
        for attname, default, is_json in zip(self.attnames, self.defaults, self.json, strict=True):
            value = values.pop(attname, default)
            if value is _REQUIRED:
                raise ValueError(f"{self.name}.{attname} is required")
            if is_json and value is not None:
                value = json.dumps(value)
            row.append(value)
        if values:
            raise ValueError(f"{self.name}: unknown columns {sorted(values)}")
        self.rows.append(tuple(row))
        return row_id

    def flush(self, cursor: Any) -> None:
        if not self.rows:
            return
        columns = ", ".join(f'"{c}"' for c in self.columns)
        with cursor.copy(f"COPY {self.name} ({columns}) FROM STDIN") as copy:
            for row in self.rows:
                copy.write_row(row)
        self.count += len(self.rows)
        self.rows = []

    def finish(self, cursor: Any) -> None:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, false)",
            [self.name, self.next_id],
        )


_REQUIRED = object()


# --- what one tenant's calls are ----------------------------------------------------------


@dataclass
class CallFacts:
    """What the KPI check recomputes the figures from: the effective values of one call."""

    id: int
    started_at: datetime.datetime
    answered: bool
    inbound: bool
    handled_by: int | None
    analysed: bool = False
    qualified: bool = False
    booking_status: str = ""
    has_appointment: bool = False
    objections: list[str] = field(default_factory=list)
    sop_score: int | None = None
    recovery: dict[str, Any] | None = None


@dataclass
class TenantFacts:
    company_id: int
    timezone: str
    calls: list[CallFacts] = field(default_factory=list)
    # (created_at, status, due_at, assignee id)
    tasks: list[tuple[datetime.datetime, str, datetime.datetime | None, int | None]] = field(
        default_factory=list
    )
    # (assigned rep id, scheduled_start, status, outcome)
    # (assigned rep id, scheduled_start, status, outcome, contact id, created_at)
    appointments: list[tuple[Any, ...]] = field(default_factory=list)
    # contact id → when they texted in
    inbound: dict[int, list[datetime.datetime]] = field(default_factory=dict)


@dataclass
class Summary:
    tenants: list[dict[str, Any]]
    rows: dict[str, int]
    seconds: float
    facts: list[TenantFacts] | None = None


def phone(rng: random.Random, area: str) -> str:
    return f"+1{area}{rng.randint(201, 989)}{rng.randint(0, 9999):04d}"


class Generator:
    """Makes one tenant's rows at a time into the tables, then flushes them with COPY."""

    def __init__(
        self, *, calls: int, tenants: int, seed: int, now: datetime.datetime, transcript_days: int
    ) -> None:
        from analysis.models import CallAnalysis
        from appointments.models import Appointment, Lead, LeadStatusChange, Task
        from calls.models import Call, Transcript
        from messaging.models import Message, MissedCallRecovery, Thread
        from otto.models import Contact

        self.counts = calls_per_tenant(calls, tenants)
        self.seed = seed
        self.now = now
        self.transcript_since = now - datetime.timedelta(days=transcript_days)
        self.t = {
            "contact": Table(Contact),
            "call": Table(Call),
            "transcript": Table(Transcript),
            "analysis": Table(CallAnalysis),
            "lead": Table(Lead),
            "lead_change": Table(LeadStatusChange),
            "appointment": Table(Appointment),
            "task": Table(Task),
            "recovery": Table(MissedCallRecovery),
            "thread": Table(Thread),
            "message": Table(Message),
        }
        self.facts: TenantFacts | None = None
        self.reps: list[int] = []

    # -- the tenant and its people (ORM: a few rows) --

    def make_company(self, index: int, rng: random.Random) -> tuple[Any, dict[str, list[int]]]:
        from otto.models import Company, Membership, PhoneNumber, Role, User

        zone, areas = rng.choices(ZONES, weights=ZONE_WEIGHTS)[0]
        calls = self.counts[index]
        company = Company.objects.create(
            name=f"Bench {index + 1:03d} Home Services",
            slug=f"bench-{index + 1:03d}",
            clerk_org_id=f"org_bench_{index + 1:03d}",
            timezone=zone,
            twilio_number=phone(rng, areas[0]),
            recovery_enabled=rng.random() < 0.9,
        )
        numbers = {phone(rng, rng.choice(areas)) for _ in range(1 + min(6, calls // 20000))}
        PhoneNumber.objects.bulk_create(
            [PhoneNumber(company=company, number=n, kind="tracking") for n in sorted(numbers)]
        )
        staff = {
            Role.MANAGER: 1 + (calls > 50000),
            Role.CSR: max(2, min(15, calls // 12000)),
            Role.SALES_REP: max(2, min(25, calls // 8000)),
        }
        people: dict[str, list[int]] = {}
        for role, n in staff.items():
            users = User.objects.bulk_create(
                [
                    User(
                        username=f"bench{index + 1:03d}_{role}_{i}",
                        clerk_user_id=f"user_bench_{index + 1:03d}_{role}_{i}",
                        email=f"{role}{i}@bench{index + 1:03d}.example.com",
                        name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    )
                    for i in range(n)
                ]
            )
            Membership.objects.bulk_create(
                [Membership(user=u, company=company, role=role) for u in users]
            )
            people[role] = [u.pk for u in users]
        company.tracking_numbers = sorted(numbers)
        company.areas = areas
        return company, people

    # -- the calls --

    def call_times(self, rng: random.Random, n: int, zone: ZoneInfo) -> list[datetime.datetime]:
        """``n`` call start times over the history, at the tenant's business hours."""
        today = self.now.astimezone(zone).date()
        days = [today - datetime.timedelta(days=d) for d in range(HISTORY_DAYS)]
        # Growth: the latest month about twice as busy as the first.
        weights = [
            WEEKDAY_WEIGHTS[day.weekday()] * (2 - d / HISTORY_DAYS) for d, day in enumerate(days)
        ]
        picked = rng.choices(days, weights=weights, k=n)
        hours = rng.choices(range(24), weights=HOUR_WEIGHTS, k=n)
        times = []
        for day, hour in zip(picked, hours, strict=True):
            local = datetime.datetime.combine(
                day, datetime.time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=zone
            )
            at = local.astimezone(datetime.UTC).replace(microsecond=rng.randrange(1_000_000))
            # Today's later hours have not happened yet: the same hour yesterday.
            times.append(at if at < self.now else at - datetime.timedelta(days=1))
        times.sort()
        return times

    def tenant(self, index: int, keep: bool) -> tuple[dict[str, Any], TenantFacts | None]:
        rng = random.Random(f"{self.seed}:{index}")
        company, people = self.make_company(index, rng)
        zone = ZoneInfo(company.timezone)
        facts = self.facts = TenantFacts(company.pk, company.timezone) if keep else None
        csrs, reps = people["csr"], people["sales_rep"]
        self.reps = reps
        contacts: list[dict[str, Any]] = []  # per contact: id, phone, name, lead state
        phones: set[str] = set()
        last_recovery: dict[int, datetime.datetime] = {}
        times = self.call_times(rng, self.counts[index], zone)
        for started in times:
            repeat = contacts and rng.random() < 0.33
            if repeat:
                # Repeat callers are mostly recent ones.
                back = min(len(contacts) - 1, int(rng.expovariate(1 / 40)))
                contact = contacts[len(contacts) - 1 - back]
            else:
                contact = self.new_contact(rng, company, started, phones)
                contacts.append(contact)
            self.call(rng, company, zone, contact, started, csrs, reps, last_recovery)
        for contact in contacts:
            self.finish_lead(rng, company, contact)
        self.manual_threads(rng, company, contacts, csrs)
        info = {
            "company": company.pk,
            "slug": company.slug,
            "clerk_org_id": company.clerk_org_id,
            "timezone": company.timezone,
            "calls": len(times),
            "contacts": len(contacts),
            "people": people,
            "tracking_numbers": company.tracking_numbers,
        }
        return info, facts

    def new_contact(
        self, rng: random.Random, company: Any, started: datetime.datetime, phones: set[str]
    ) -> dict[str, Any]:
        number = phone(rng, rng.choice(company.areas))
        while number in phones:
            number = phone(rng, rng.choice(company.areas))
        phones.add(number)
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}" if rng.random() < 0.85 else ""
        address = f"{rng.randint(10, 9999)} {rng.choice(STREETS)} St" if name else ""
        contact_id = self.t["contact"].add(
            company_id=company.pk,
            phone=number,
            name=name,
            address=address,
            created_at=started,
            updated_at=started,
        )
        return {
            "id": contact_id,
            "phone": number,
            "name": name,
            "address": address,
            "calls": [],
            "lead": None,
            "thread": None,
        }

    def call(
        self,
        rng: random.Random,
        company: Any,
        zone: ZoneInfo,
        contact: dict[str, Any],
        started: datetime.datetime,
        csrs: list[int],
        reps: list[int],
        last_recovery: dict[int, datetime.datetime],
    ) -> None:
        t = self.t
        inbound = rng.random() < 0.85
        roll = rng.random()
        if inbound:
            answered, voicemail = roll < 0.72, 0.72 <= roll < 0.80
        else:
            answered, voicemail = roll < 0.65, False
        talked = answered or voicemail
        duration = int(rng.lognormvariate(5.2, 0.7)) if answered else rng.randint(0, 40)
        handled_by = (rng.choice(csrs) if inbound else rng.choice(reps)) if answered else None
        age = self.now - started
        # The pipeline's state: done for nearly all; the newest calls still on their way.
        if not talked:
            stage, reason = "skipped", "not answered"
        elif age < datetime.timedelta(minutes=20):
            stage, reason = rng.choice(["recorded", "transcribing", "transcribed"]), ""
        elif rng.random() < 0.004:
            stage, reason = "failed", ""
        else:
            stage, reason = "done", ""
        analysed = talked and stage == "done"
        service = rng.choice(SERVICES)
        source_name = rng.choice(SOURCES)
        tags = rng.sample(TAGS, k=rng.choice([0, 0, 1, 1, 2]))
        call_id = t["call"].new_id()
        lead = self.ensure_lead(rng, company, contact, started, source_name, call_id)
        fc = CallFacts(call_id, started, bool(answered), inbound, handled_by)
        call_row: dict[str, Any] = {
            "id": call_id,
            "company_id": company.pk,
            "source": "callrail",
            "external_id": f"CAL{company.pk:04d}{call_id:012d}",
            "legacy_id": str(call_id),
            "direction": "inbound" if inbound else "outbound",
            "answered": answered,
            "voicemail": voicemail,
            "started_at": started,
            "duration_seconds": duration,
            "customer_number": contact["phone"],
            "tracking_number": rng.choice(company.tracking_numbers),
            "customer_name": contact["name"],
            "contact_id": contact["id"],
            "handled_by_id": handled_by,
            "recording": f"{company.pk}/recordings/{call_id}.mp3" if talked else "",
            "recording_size": duration * 16000 if talked else None,
            "recording_content_type": "audio/mpeg" if talked else "",
            "recording_duration_seconds": duration if talked else None,
            "source_name": source_name,
            "tags": tags,
            "stage": stage,
            "stage_reason": reason,
            "stage_changed_at": started + datetime.timedelta(seconds=duration + 90),
            "created_at": started + datetime.timedelta(seconds=duration + 5),
            "updated_at": started + datetime.timedelta(seconds=duration + 90),
        }
        contact["calls"].append(call_id)
        if analysed:
            self.analysis(rng, company, zone, contact, lead, call_row, service, reps, fc)
        t["call"].add(**call_row)
        if inbound and not answered:
            self.recovery(rng, company, contact, call_id, started, last_recovery, fc, csrs)
        if self.facts is not None:
            self.facts.calls.append(fc)

    def ensure_lead(
        self,
        rng: random.Random,
        company: Any,
        contact: dict[str, Any],
        started: datetime.datetime,
        source_name: str,
        call_id: int,
    ) -> dict[str, Any]:
        if contact["lead"] is None:
            lead_id = self.t["lead"].new_id()
            contact["lead"] = {
                "id": lead_id,
                "status": "new",
                "source": source_name,
                "created_at": started,
                "last": started,
                "rep": None,
                "score": None,
                "closed": None,
                "deal": None,
            }
            self.status_change(company, contact["lead"], "new", "first call", call_id, started)
        lead = contact["lead"]
        lead["last"] = started
        return lead

    def status_change(
        self,
        company: Any,
        lead: dict[str, Any],
        status: str,
        reason: str,
        call_id: int | None,
        at: datetime.datetime,
        version: int | None = None,
        actor: int | None = None,
    ) -> None:
        previous = "" if reason == "first call" else lead["status"]
        if previous == status:
            return
        self.t["lead_change"].add(
            company_id=company.pk,
            lead_id=lead["id"],
            from_status=previous,
            to_status=status,
            reason=reason,
            actor_id=actor,
            call_id=call_id,
            analysis_version=version,
            created_at=at,
        )
        lead["status"] = status

    def analysis(
        self,
        rng: random.Random,
        company: Any,
        zone: ZoneInfo,
        contact: dict[str, Any],
        lead: dict[str, Any],
        call: dict[str, Any],
        service: tuple[str, str, str],
        reps: list[int],
        fc: CallFacts,
    ) -> None:
        t = self.t
        started, call_id = call["started_at"], call["id"]
        qualified = rng.random() < 0.58
        if qualified:
            booking = rng.choices(["booked", "not_booked", "service_not_offered"], [46, 44, 10])[0]
            quality = rng.choice(["hot", "hot", "warm"]) if booking == "booked" else "warm"
        else:
            booking = rng.choices(["not_booked", "service_not_offered"], [92, 8])[0]
            quality = rng.choice(["cold", "unqualified"])
        n_objections = rng.choices([0, 1, 2, 3, 4], [38, 30, 18, 9, 5])[0]
        categories = rng.choices(CATEGORIES, CATEGORY_WEIGHTS, k=n_objections)
        utterances = self.utterances(rng, contact["name"], service, categories, booking)
        objections = [
            {
                "category": c,
                "quote": QUOTES[c],
                "utterance": 3 + 2 * i,
                "resolved": rng.random() < 0.5,
            }
            for i, c in enumerate(categories)
        ]
        score = rng.randint(35, 100)
        done = [s for s in SOP_STEPS if rng.random() < score / 100]
        actions = [
            {
                "type": rng.choice(ACTIONS),
                "description": f"{rng.choice(['Call back', 'Send', 'Confirm'])} about the "
                f"{service[1]}",
                "due": rng.choice(["tomorrow", "Friday", None]),
                "utterance": 2,
            }
            for _ in range(rng.choices([0, 1, 2], [50, 35, 15])[0])
        ]
        appointment = None
        if booking == "booked":
            day = started.astimezone(zone).date() + datetime.timedelta(days=rng.randint(1, 6))
            local = datetime.datetime.combine(
                day, datetime.time(rng.choice([8, 9, 10, 11, 13, 14, 15, 16])), tzinfo=zone
            )
            appointment = {
                "start": local.isoformat(),
                "end": (local + datetime.timedelta(hours=rng.choice([1, 2]))).isoformat(),
                "address": contact.get("address") or f"{rng.randint(10, 9999)} Main St",
                "service_type": service[0],
            }
        overrides: dict[str, Any] = {}
        if rng.random() < 0.01:
            # A person's correction: the KPIs must read it over the model's value.
            overrides = rng.choice([{"booking_status": "not_booked"}, {"qualified": not qualified}])
        versions = 2 if rng.random() < 0.03 else 1
        analysed_at = started + datetime.timedelta(seconds=call["duration_seconds"] + 60)
        for version in range(1, versions + 1):
            current = version == versions
            t["analysis"].add(
                company_id=company.pk,
                call_id=call_id,
                version=version,
                is_current=current,
                analyzer="openai",
                model="gpt-4.1-mini",
                prompt_version="2026-11" if current else "2026-09",
                summary=f"Customer called about the {service[1]}: {service[2]}.",
                sentiment=round(rng.uniform(-0.6, 0.9), 2),
                intent=service[0],
                urgency=rng.choices(["low", "normal", "high", "emergency"], [20, 60, 15, 5])[0],
                qualified=qualified,
                lead_quality=quality,
                booking_status=booking,
                objections=objections,
                appointment=appointment,
                customer_name=contact["name"],
                service_address=appointment["address"] if appointment else "",
                pending_actions=actions,
                coaching_tips=["Confirm the address before ending the call."],
                sop={
                    "score": score,
                    "completed": done,
                    "missed": [s for s in SOP_STEPS if s not in done],
                },
                citations={"booking_status": [len(utterances) - 1], "summary": [1]},
                overrides=overrides if current else {},
                input_tokens=rng.randint(900, 4000),
                output_tokens=rng.randint(300, 900),
                cost_usd=round(rng.uniform(0.001, 0.01), 6),
                created_at=analysed_at + datetime.timedelta(days=version - 1),
                updated_at=analysed_at + datetime.timedelta(days=version - 1),
            )
        effective_booking = overrides.get("booking_status", booking)
        effective_qualified = overrides.get("qualified", qualified)
        if started >= self.transcript_since:
            self.transcript(company, call, utterances)
        fc.analysed = True
        fc.booking_status = effective_booking
        fc.objections = categories
        fc.sop_score = score
        # The apply stage's outcomes, from the model's values at the time.
        status = {
            "booked": "qualified_booked",
            "service_not_offered": "qualified_service_not_offered",
        }
        new_status = status.get(booking) or (
            "qualified_unbooked"
            if qualified
            else {"hot": "hot", "warm": "warm"}.get(quality, "new")
        )
        if lead["closed"] is None:
            self.status_change(
                company, lead, new_status, "call analysis", call_id, analysed_at, versions
            )
            lead["score"] = {"hot": 80, "warm": 50, "cold": 20}.get(quality, lead["score"])
        if appointment is not None:
            self.make_appointment(rng, company, contact, lead, call, appointment, reps, fc)
        for i, action in enumerate(actions):
            self.task(rng, company, contact, lead, call, action, i, reps, versions)
        fc.qualified = (
            bool(effective_qualified) or effective_booking == "booked" or fc.has_appointment
        )

    def utterances(
        self,
        rng: random.Random,
        name: str,
        service: tuple[str, str, str],
        categories: list[str],
        booking: str,
    ) -> list[dict[str, Any]]:
        customer = name or "the customer"
        lines = [
            ("agent", "Thanks for calling, this is the service desk, how can I help you today?"),
            ("customer", f"Hi, this is {customer}, {service[2]}."),
            ("agent", f"I'm sorry to hear that. How old is the {service[1]}?"),
        ]
        for category in categories:
            lines.append(("customer", QUOTES[category]))
            lines.append(("agent", "I understand. We can go over the options together."))
        if rng.random() < 0.05:
            lines.append(("customer", "Is it still under warranty from the last visit?"))
        if booking == "booked":
            lines.append(("agent", "I have a technician available tomorrow morning at 10."))
            lines.append(("customer", "Tomorrow at 10 works, please book it."))
        elif booking == "service_not_offered":
            lines.append(("agent", "I'm afraid we don't offer that service in your area."))
        else:
            lines.append(("customer", "Let me think about it and call you back."))
        out, at = [], 0.4
        for i, (role, text) in enumerate(lines):
            end = at + 1.5 + len(text) / 16
            speaker = 0 if role == "agent" else 1
            out.append(
                {
                    "speaker": speaker,
                    "role": role,
                    "start": round(at, 2),
                    "end": round(end, 2),
                    "text": text,
                    "confidence": 0.93,
                }
            )
            at = end + 0.3 + (i % 3) * 0.2
        return out

    def transcript(self, company: Any, call: dict[str, Any], utterances: list[dict]) -> None:
        text = " ".join(u["text"] for u in utterances)
        self.t["transcript"].add(
            company_id=company.pk,
            call_id=call["id"],
            text=text,
            utterances=utterances,
            language="en",
            duration_seconds=float(call["duration_seconds"]),
            word_count=len(text.split()),
            provider="deepgram",
            model="nova-3",
            roles={"0": "agent", "1": "customer"},
            roles_confidence=0.95,
            roles_method="greeting",
            redaction_counts={},
            redaction_spans=[],
            created_at=call["started_at"]
            + datetime.timedelta(seconds=call["duration_seconds"] + 30),
            updated_at=call["started_at"]
            + datetime.timedelta(seconds=call["duration_seconds"] + 30),
        )

    def make_appointment(
        self,
        rng: random.Random,
        company: Any,
        contact: dict[str, Any],
        lead: dict[str, Any],
        call: dict[str, Any],
        booked: dict[str, Any],
        reps: list[int],
        fc: CallFacts,
    ) -> None:
        start = datetime.datetime.fromisoformat(booked["start"]).astimezone(datetime.UTC)
        end = datetime.datetime.fromisoformat(booked["end"]).astimezone(datetime.UTC)
        rep = rng.choice(reps) if rng.random() < 0.9 else None
        if start > self.now:
            status = rng.choice(["scheduled", "scheduled", "confirmed"])
            outcome = "pending"
        else:
            status = rng.choices(
                ["completed", "cancelled", "no_show", "scheduled"], [72, 12, 8, 8]
            )[0]
            outcome = (
                rng.choices(["won", "lost", "pending"], [48, 37, 15])[0]
                if status == "completed"
                else "pending"
            )
        deal = round(rng.uniform(150, 12000), 2) if outcome == "won" else None
        created = call["started_at"] + datetime.timedelta(seconds=call["duration_seconds"] + 120)
        self.t["appointment"].add(
            company_id=company.pk,
            lead_id=lead["id"],
            contact_id=contact["id"],
            call_id=call["id"],
            scheduled_start=start,
            scheduled_end=end,
            address=booked["address"],
            latitude=round(rng.uniform(25, 48), 6),
            longitude=round(rng.uniform(-122, -71), 6),
            geocode_status="ok",
            service_type=booked["service_type"],
            status=status,
            outcome=outcome,
            deal_size=deal,
            assigned_rep_id=rep,
            analysis_version=1,
            created_at=created,
            updated_at=max(created, min(end, self.now)),
        )
        fc.has_appointment = True
        if rep is not None and lead["rep"] is None:
            lead["rep"] = rep
        if outcome in ("won", "lost") and lead["closed"] is None:
            closed = end + datetime.timedelta(hours=2)
            status_to = "closed_won" if outcome == "won" else "closed_lost"
            self.status_change(
                company, lead, status_to, f"appointment {outcome}", None, closed, actor=rep
            )
            lead["closed"], lead["deal"] = closed, deal
        if self.facts is not None:
            self.facts.appointments.append((rep, start, status, outcome, contact["id"], created))

    def task(
        self,
        rng: random.Random,
        company: Any,
        contact: dict[str, Any],
        lead: dict[str, Any],
        call: dict[str, Any],
        action: dict[str, Any],
        index: int,
        reps: list[int],
        version: int,
    ) -> None:
        created = call["started_at"] + datetime.timedelta(seconds=call["duration_seconds"] + 120)
        due = created + datetime.timedelta(days=rng.choice([1, 1, 2, 3]))
        old = due < self.now - datetime.timedelta(days=7)
        status = rng.choices(["done", "cancelled", "open"], [85, 6, 9] if old else [40, 5, 55])[0]
        assignee = rng.choice(reps) if rng.random() < 0.8 else None
        self.t["task"].add(
            company_id=company.pk,
            type=action["type"],
            description=action["description"],
            due_at=due,
            status=status,
            assignee_id=assignee,
            contact_id=contact["id"],
            lead_id=lead["id"],
            call_id=call["id"],
            source="ai",
            dedupe_key=f"ai:{index + 1}",
            analysis_version=version,
            completed_at=due if status == "done" else None,
            completed_by_id=assignee if status == "done" else None,
            created_at=created,
            updated_at=due if status != "open" else created,
        )
        if self.facts is not None:
            self.facts.tasks.append((created, status, due, assignee))

    def recovery(
        self,
        rng: random.Random,
        company: Any,
        contact: dict[str, Any],
        call_id: int,
        started: datetime.datetime,
        last: dict[int, datetime.datetime],
        fc: CallFacts,
        csrs: list[int],
    ) -> None:
        day = datetime.timedelta(hours=24)
        if not company.recovery_enabled or (
            contact["id"] in last and started < last[contact["id"]] + day
        ):
            return
        last[contact["id"]] = started
        t = self.t
        recovery_id = t["recovery"].new_id()
        replied = rng.random() < 0.3
        active = self.now - started < datetime.timedelta(hours=48)
        if active:
            status, step = "active", 1
        elif replied:
            status, step = rng.choice(["replied", "recovered"]), 1
        else:
            status, step = rng.choices(["completed", "escalated", "stopped"], [60, 30, 10])[0], 4
        thread = self.thread(company, contact, started)
        response = datetime.timedelta(seconds=rng.randint(20, 400))
        texts = [("recovery", started + response)]
        texts += [("recovery", started + datetime.timedelta(hours=h)) for h in (2, 10, 24)][
            : step - 1
        ]
        first_sent = None
        for kind, at in texts:
            if at > self.now:
                break
            first_sent = first_sent or at
            self.message(
                company,
                thread,
                "outbound",
                "Sorry we missed your call! How can we help?",
                at,
                kind=kind,
                recovery=recovery_id,
                status="delivered",
            )
        if replied and started + response + datetime.timedelta(minutes=30) < self.now:
            reply_at = started + response + datetime.timedelta(minutes=rng.randint(2, 600))
            if reply_at < self.now:
                self.message(
                    company,
                    thread,
                    "inbound",
                    "Yes please call me back about the quote",
                    reply_at,
                    status="received",
                )
        t["recovery"].add(
            id=recovery_id,
            company_id=company.pk,
            call_id=call_id,
            contact_id=contact["id"],
            status=status,
            step=step,
            next_action_at=started + datetime.timedelta(hours=2) if active else None,
            stopped_reason="" if status != "stopped" else "a person texted the contact",
            started_at=started,
            cooldown_until=started + day,
            created_at=started + datetime.timedelta(seconds=5),
            updated_at=started + datetime.timedelta(seconds=5),
        )
        fc.recovery = {
            "started_at": started,
            "contact": contact["id"],
            "status": status,
            "first_sent": first_sent,
        }

    def thread(self, company: Any, contact: dict[str, Any], at: datetime.datetime) -> dict:
        if contact["thread"] is None:
            contact["thread"] = {
                "id": self.t["thread"].new_id(),
                "phone": contact["phone"],
                "contact": contact["id"],
                "created_at": at,
                "last": at,
                "preview": "",
                "unread": 0,
                "last_inbound": None,
            }
        return contact["thread"]

    def message(
        self,
        company: Any,
        thread: dict[str, Any],
        direction: str,
        body: str,
        at: datetime.datetime,
        *,
        status: str,
        kind: str = "",
        recovery: int | None = None,
        sent_by: int | None = None,
    ) -> None:
        message_id = self.t["message"].new_id()
        outbound = direction == "outbound"
        ours, theirs = company.twilio_number, thread["phone"]
        self.t["message"].add(
            id=message_id,
            company_id=company.pk,
            thread_id=thread["id"],
            direction=direction,
            body=body,
            status=status,
            from_number=ours if outbound else theirs,
            to_number=theirs if outbound else ours,
            sent_by_id=sent_by,
            kind=kind if outbound else "",
            recovery_id=recovery,
            twilio_sid=f"SM{company.pk:06d}{message_id:026d}",
            attempts=1 if outbound else 0,
            claimed_at=at if outbound else None,
            created_at=at,
            updated_at=at,
        )
        if at >= thread["last"]:
            thread["last"], thread["preview"] = at, body[:160]
        if not outbound:
            thread["unread"] += 1
            thread["last_inbound"] = at
            if self.facts is not None:
                self.facts.inbound.setdefault(thread["contact"], []).append(at)

    def manual_threads(
        self, rng: random.Random, company: Any, contacts: list[dict[str, Any]], csrs: list[int]
    ) -> None:
        for contact in contacts:
            if contact["thread"] is None and rng.random() < 0.06:
                first = contact["lead"]["created_at"]
                thread = self.thread(company, contact, first)
                for i in range(rng.randint(1, 5)):
                    at = first + datetime.timedelta(hours=1 + 3 * i)
                    if at > self.now:
                        break
                    if i % 2:
                        self.message(
                            company,
                            thread,
                            "inbound",
                            "Thanks, see you then.",
                            at,
                            status="received",
                        )
                    else:
                        self.message(
                            company,
                            thread,
                            "outbound",
                            "Confirming your visit.",
                            at,
                            status="delivered",
                            kind="manual",
                            sent_by=rng.choice(csrs),
                        )
                thread["unread"] = rng.choice([0, 0, thread["unread"]])
            thread = contact["thread"]
            if thread is not None:
                self.t["thread"].add(
                    id=thread["id"],
                    company_id=company.pk,
                    contact_id=contact["id"],
                    phone=contact["phone"],
                    last_message_at=thread["last"],
                    last_message_preview=thread["preview"],
                    unread=thread["unread"],
                    last_inbound_at=thread["last_inbound"],
                    created_at=thread["created_at"],
                )

    def finish_lead(self, rng: random.Random, company: Any, contact: dict[str, Any]) -> None:
        lead = contact["lead"]
        if lead is None:
            return
        closed = lead["closed"]
        status = lead["status"]
        if closed is None and lead["last"] < self.now - datetime.timedelta(days=120):
            self.status_change(
                company,
                lead,
                "dormant",
                "no contact for 120 days",
                None,
                lead["last"] + datetime.timedelta(days=120),
            )
            status = "dormant"
        if lead["rep"] is None and rng.random() < 0.3:
            lead["rep"] = None if not self.reps else rng.choice(self.reps)
        self.t["lead"].add(
            id=lead["id"],
            company_id=company.pk,
            contact_id=contact["id"],
            status=status,
            source=lead["source"],
            assigned_rep_id=lead["rep"],
            score=lead["score"],
            last_contacted_at=lead["last"],
            is_active=closed is None,
            closed_at=closed,
            deal_size=lead["deal"],
            created_at=lead["created_at"],
            updated_at=max(lead["last"], closed or lead["last"]),
        )

    # -- the run --

    def run(
        self, keep: bool, progress: bool
    ) -> Iterator[tuple[dict[str, Any], TenantFacts | None]]:
        """Generate and COPY tenant by tenant (one transaction each), yielding what each is."""
        from django.db import connection, transaction

        with connection.cursor() as cursor:
            for table in self.t.values():
                table.start(cursor.cursor)
        for index in range(len(self.counts)):
            started = time.monotonic()
            with transaction.atomic(), connection.cursor() as cursor:
                info, facts = self.tenant(index, keep)
                # Parents before children: the foreign keys are checked row by row.
                for table in self.t.values():
                    table.flush(cursor.cursor)
            if progress:
                print(
                    f"tenant {index + 1}/{len(self.counts)}: {info['calls']} calls "
                    f"in {time.monotonic() - started:.1f} s",
                    file=sys.stderr,
                )
            yield info, facts
        with connection.cursor() as cursor:
            for table in self.t.values():
                table.finish(cursor.cursor)


# Every table the generator writes, children first.
TABLES = [
    "messaging_message", "messaging_missedcallrecovery", "messaging_thread",
    "appointments_task", "appointments_appointment", "appointments_leadstatuschange",
    "appointments_lead", "analysis_callanalysis", "calls_transcript", "calls_call",
    "otto_contact",
]  # fmt: skip

SEARCH_VECTOR = """
UPDATE calls_call c SET search_vector =
    setweight(to_tsvector('english'::regconfig, COALESCE(c.customer_name, '')), 'A')
    || setweight(to_tsvector('english'::regconfig, COALESCE(
        (SELECT string_agg(tag, ' ') FROM jsonb_array_elements_text(c.tags) AS tag), '')), 'A')
    || setweight(to_tsvector('english'::regconfig, COALESCE(t.text, '')), 'B')
FROM calls_transcript t
WHERE t.call_id = c.id AND t.id >= %s AND c.company_id = ANY(%s)
"""


def empty() -> None:
    """Remove every tenant (and every row that hangs off one) and the bench's users."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE otto_company CASCADE")
        # The rollup's marks name their tenant by id, without a foreign key.
        cursor.execute("DELETE FROM analysis_kpidirtyday")
        cursor.execute("DELETE FROM otto_user WHERE username LIKE 'bench%%'")


def load(
    *,
    calls: int,
    tenants: int,
    seed: int = 1,
    now: datetime.datetime | None = None,
    transcript_days: int = 90,
    keep: bool = False,
    truncate: bool = False,
    progress: bool = False,
) -> Summary:
    """Generate and load the dataset into the default database; see the module docstring."""
    from django.db import connection

    started = time.monotonic()
    now = now or datetime.datetime.now(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    with connection.cursor() as cursor:
        if truncate:
            empty()
        # A loss on a crash costs a re-run, not data anyone needs.
        cursor.execute("SET synchronous_commit = off")
    generator = Generator(
        calls=calls, tenants=tenants, seed=seed, now=now, transcript_days=transcript_days
    )
    first_transcript = None
    infos, facts = [], []
    for info, tenant_facts in generator.run(keep, progress):
        first_transcript = first_transcript or generator.t["transcript"].next_id
        infos.append(info)
        if tenant_facts is not None:
            facts.append(tenant_facts)
    # Search vectors as calls.search.index_call computes them, for the calls with text.
    with connection.cursor() as cursor:
        start = generator.t["transcript"].next_id - generator.t["transcript"].count
        cursor.execute(SEARCH_VECTOR, [start, [i["company"] for i in infos]])
    # The people and companies too: with their statistics still those of an empty table,
    # the planner joined every call of a list page to every user, and the rollup's rebuild
    # below ran one tenant's recovery figures for over 9 minutes instead of seconds.
    analyze(*TABLES, "otto_user", "otto_membership", "otto_company")
    # COPY goes around the signals that keep the KPIs' daily rollup: build it.
    from analysis import rollup
    from otto.models import Company

    for company in Company.objects.filter(pk__in=[i["company"] for i in infos]):
        rollup.rebuild(company)
    analyze("analysis_kpiday")
    rows = {table.name: table.count for table in generator.t.values()}
    return Summary(infos, rows, time.monotonic() - started, facts if keep else None)


def analyze(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--transcript-days", type=int, default=90)
    parser.add_argument(
        "--now",
        type=datetime.datetime.fromisoformat,
        default=None,
        help="The dataset's present (ISO 8601, UTC); default this hour.",
    )
    parser.add_argument(
        "--truncate",
        action="store_true",
        help="Empty the database's tenants first (every company and what it owns).",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.webhook_ingest import ENV, manage

    os.environ.update(ENV)
    manage("migrate", "--noinput", "-v", "0")
    import django

    django.setup()
    now = args.now.replace(tzinfo=datetime.UTC) if args.now and not args.now.tzinfo else args.now
    summary = load(
        calls=args.calls,
        tenants=args.tenants,
        seed=args.seed,
        now=now,
        transcript_days=args.transcript_days,
        truncate=args.truncate,
        progress=True,
    )
    sizes = sorted((i["calls"] for i in summary.tenants), reverse=True)
    print(
        f"loaded in {summary.seconds:.0f} s; calls per tenant: largest {sizes[0]}, "
        f"median {sizes[len(sizes) // 2]}, smallest {sizes[-1]}"
    )
    for table, count in summary.rows.items():
        print(f"  {table:<32} {count:>10,}")


if __name__ == "__main__":
    main()
