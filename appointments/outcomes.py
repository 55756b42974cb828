"""The ``applied`` stage's writes: a call's current analysis, as people corrected it
(:func:`analysis.selectors.effective_fields`, so overrides win), becomes the contact's lead
status, an appointment, tasks and key signals (DESIGN §9.3, docs/outcomes.md).

:func:`write_outcomes` runs inside the transaction that moves the call to ``applied``, so
all outcomes of one analysis version are written together or not at all. Every write is
keyed on a unique constraint (one active lead per contact, one appointment per call, one
task per call, type and dedupe key, one signal per call and type), so a redelivery or a
re-analysis updates rows and never makes one twice.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from analysis.models import CallAnalysis
from analysis.selectors import effective_fields
from analysis.when import DEFAULT_DURATION, resolve_clock, resolve_day
from appointments.models import Appointment, KeySignal, Lead, LeadStatusChange, Task
from appointments.services import change_lead_status, open_lead
from calls.models import Call
from otto.models import Contact

logger = logging.getLogger(__name__)

S = Lead.Status
# How strong a status is (docs/outcomes.md "Precedence"). The pipeline moves a lead to a
# stronger status, never to a weaker one or one as strong, with one exception: a new
# analysis of the call that set the current status replaces what that call said.
RANK: dict[str, int] = {
    S.NEW: 0,
    S.WARM: 1,
    S.DORMANT: 1,
    S.ABANDONED: 1,
    S.HOT: 2,
    S.NURTURING: 2,
    S.QUALIFIED_UNBOOKED: 3,
    S.QUALIFIED_SERVICE_NOT_OFFERED: 3,
    S.QUALIFIED_BOOKED: 4,
    S.CLOSED_WON: 5,
    S.CLOSED_LOST: 5,
}
# Statuses only people set: the pipeline never replaces one with a weaker status, even
# from the call that set the one before.
MANUAL = frozenset({S.NURTURING, S.DORMANT, S.ABANDONED, S.CLOSED_WON, S.CLOSED_LOST})
SCORE = {"hot": 90, "warm": 60, "cold": 30, "unqualified": 10}
BOOKED_SCORE = 100

# Key signals: the thresholds and severities of docs/outcomes.md "Key signals".
NEGATIVE_SENTIMENT = -0.5
STRONGLY_NEGATIVE_SENTIMENT = -0.8
MANY_OBJECTIONS = 3
# A due date said without a time ("Thursday") is due at the end of that working day.
DUE_CLOCK = datetime.time(17, 0)


@dataclass
class Outcomes:
    """What one application wrote that its caller acts on: the lead, and the appointment
    with whether to geocode it (its address is new or changed)."""

    lead: Lead | None = None
    appointment: Appointment | None = None
    geocode: bool = False


def write_outcomes(call: Call, analysis: CallAnalysis) -> Outcomes:
    """Write the outcomes of ``analysis`` (the call's current one). Run inside the
    transaction that moves the call to ``applied``."""
    fields = effective_fields(analysis)
    why = f"analysis v{analysis.version}"
    out = Outcomes()
    if call.contact_id is not None:
        # Serialises the applications of one contact's calls: one active lead per contact.
        Contact.objects.select_for_update().filter(pk=call.contact_id).first()
        out.lead = apply_lead(call, call.contact_id, analysis.version, fields, why=why)
    out.appointment, out.geocode = apply_appointment(call, out.lead, analysis.version, fields)
    apply_tasks(call, out.lead, analysis.version, fields)
    apply_signals(call, analysis.version, fields)
    return out


# --- leads ---------------------------------------------------------------------------------


def status_from(fields: dict[str, Any]) -> str:
    """The lead status an analysis says (docs/outcomes.md "Lead statuses")."""
    booking = fields.get("booking_status")
    if booking == "booked":
        return S.QUALIFIED_BOOKED
    if booking == "service_not_offered":
        return S.QUALIFIED_SERVICE_NOT_OFFERED
    if fields.get("qualified"):
        return S.QUALIFIED_UNBOOKED
    return {"hot": S.HOT, "warm": S.WARM}.get(fields.get("lead_quality") or "", S.NEW)


def score_from(fields: dict[str, Any]) -> int | None:
    if fields.get("booking_status") == "booked":
        return BOOKED_SCORE
    return SCORE.get(fields.get("lead_quality") or "")


def apply_lead(
    call: Call, contact_id: int, version: int, fields: dict[str, Any], *, why: str
) -> Lead:
    """The contact's active lead, opened on its first call, moved to the status the
    analysis says when precedence allows (:func:`may_replace`)."""
    target = status_from(fields)
    reason = f"{why}: {fields.get('booking_status')}, {fields.get('lead_quality')}"
    lead = (
        Lead.objects.select_for_update()
        .filter(company_id=call.company_id, contact_id=contact_id, is_active=True)
        .first()
    )
    if lead is None:
        lead = open_lead(
            call.company_id,
            contact_id,
            status=target,
            source=call.source_name,
            reason=f"first call, {reason}",
            call=call,
            analysis_version=version,
        )
    else:
        last = lead.history.order_by("-created_at", "-pk").first()
        if may_replace(lead.status, target, last=last, call=call):
            previous = last.analysis_version if last and last.call_id == call.pk else None
            if previous is not None and previous != version:
                reason = f"re-analysis v{version}: {lead.status} → {target} ({reason})"
            change_lead_status(
                lead, target, actor=None, reason=reason, call=call, analysis_version=version
            )
    started = call.started_at or call.created_at
    changes: dict[str, Any] = {"score": score_from(fields)}
    if lead.last_contacted_at is None or started > lead.last_contacted_at:
        changes["last_contacted_at"] = started
    Lead.objects.filter(pk=lead.pk).update(**changes, updated_at=timezone.now())
    for name, value in changes.items():
        setattr(lead, name, value)
    return lead


def may_replace(current: str, target: str, *, last: LeadStatusChange | None, call: Call) -> bool:
    """Whether the pipeline moves a lead from ``current`` to ``target``: to a stronger
    status always; to a weaker one (or one as strong) only when the current status is
    the pipeline's own verdict on this same call (a re-analysis changed its mind)."""
    if current == target:
        return False
    if RANK[target] > RANK[current]:
        return True
    said_by_this_call = last is not None and last.actor_id is None and last.call_id == call.pk
    return said_by_this_call and current not in MANUAL


# --- appointments --------------------------------------------------------------------------


def apply_appointment(
    call: Call, lead: Lead | None, version: int, fields: dict[str, Any]
) -> tuple[Appointment | None, bool]:
    """The call's appointment, made once (unique per call) when the analysis says booked
    with a start; updated by a later version while people have not taken it on
    (``scheduled``, outcome ``pending``); cancelled when a later version says not booked.
    Returns it, and whether its address needs geocoding."""
    existing = Appointment.objects.select_for_update().filter(call=call).first()
    editable = existing is not None and (
        existing.status == Appointment.Status.SCHEDULED
        and existing.outcome == Appointment.Outcome.PENDING
    )
    slot = booked_slot(fields)
    if slot is None or lead is None:
        if editable and existing is not None:
            note = f"cancelled by analysis v{version}: {fields.get('booking_status')}"
            existing.status = Appointment.Status.CANCELLED
            existing.notes = "\n".join(filter(None, [existing.notes, note]))
            existing.analysis_version = version
            existing.save(update_fields=["status", "notes", "analysis_version", "updated_at"])
            logger.info("appointment %s of call %s %s", existing.pk, call.pk, note)
        return existing, False
    start, end = slot
    details = fields.get("appointment") or {}
    address = (details.get("address") or fields.get("service_address") or "").strip()[:300]
    values = {
        "scheduled_start": start,
        "scheduled_end": end,
        "address": address,
        "service_type": (details.get("service_type") or "")[:200],
        "analysis_version": version,
    }
    if existing is None:
        appointment = Appointment.objects.create(
            company_id=call.company_id,
            lead=lead,
            contact_id=lead.contact_id,
            call=call,
            assigned_rep_id=lead.assigned_rep_id,
            **values,
        )
        return appointment, bool(address)
    if not editable:
        return existing, False
    moved = existing.address != address
    for name, value in values.items():
        setattr(existing, name, value)
    if existing.assigned_rep_id is None:
        existing.assigned_rep_id = lead.assigned_rep_id
    if moved:
        existing.latitude = existing.longitude = None
        existing.geocode_status = Appointment.GeocodeStatus.PENDING
        existing.geocode_error = ""
    existing.save()
    return existing, moved and bool(address)


def booked_slot(fields: dict[str, Any]) -> tuple[datetime.datetime, datetime.datetime] | None:
    """(start, end) of a booked call's appointment; None when not booked or no start was
    agreed (a ``schedule_appointment`` task is made instead)."""
    if fields.get("booking_status") != "booked":
        return None
    details = fields.get("appointment") or {}
    start = _instant(details.get("start"))
    if start is None:
        return None
    end = _instant(details.get("end"))
    if end is None or end <= start:
        end = start + DEFAULT_DURATION
    return start, end


def _instant(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


# --- tasks ---------------------------------------------------------------------------------


def apply_tasks(call: Call, lead: Lead | None, version: int, fields: dict[str, Any]) -> list[Task]:
    """One task per pending action, keyed (call, type, ``ai:<n>``: the n-th action of
    that type), so the same action across re-analyses is one task and a changed
    description or due date updates it. Open AI tasks of the call that the new version
    no longer asks for are cancelled; done ones are left alone."""
    actions = [a for a in (fields.get("pending_actions") or []) if isinstance(a, dict)]
    wanted: list[tuple[str, str, str]] = [
        (task_type(a.get("type")), str(a.get("description") or "")[:2000], str(a.get("due") or ""))
        for a in actions
    ]
    booked = fields.get("booking_status") == "booked"
    if booked and booked_slot(fields) is None:
        wanted.append(
            (Task.Type.SCHEDULE_APPOINTMENT, "Booked on the call, but no time was agreed.", "")
        )
    if not wanted and fields.get("qualified") and not booked:
        # An unbooked qualified call always leaves someone something to do.
        wanted.append((Task.Type.FOLLOW_UP_CALL, "Follow up to book the appointment.", ""))
    seen: dict[str, int] = {}
    tasks, keys = [], []
    for kind, description, due in wanted:
        seen[kind] = seen.get(kind, 0) + 1
        key = f"ai:{seen[kind]}"
        keys.append((kind, key))
        values = {
            "description": description,
            "due_at": due_at(due, call),
            "analysis_version": version,
        }
        task, _ = Task.objects.update_or_create(
            call=call,
            type=kind,
            dedupe_key=key,
            defaults=values,
            create_defaults={
                **values,
                "company_id": call.company_id,
                "contact_id": call.contact_id,
                "lead": lead,
                "assignee_id": call.handled_by_id,
                "source": Task.Source.AI,
            },
        )
        tasks.append(task)
    stale = Task.objects.filter(call=call, source=Task.Source.AI, status=Task.Status.OPEN)
    for kind, key in keys:
        stale = stale.exclude(type=kind, dedupe_key=key)
    stale.update(status=Task.Status.CANCELLED, analysis_version=version, updated_at=timezone.now())
    return tasks


def task_type(value: Any) -> str:
    """A canonical task type; anything else (an override with a free-form type) is custom."""
    return value if value in Task.Type.values else Task.Type.CUSTOM


def due_at(phrase: str, call: Call) -> datetime.datetime | None:
    """When a pending action is due: an ISO instant as given, or a day ("Thursday",
    "tomorrow at 10 am") resolved from the call's day in the tenant's zone, at
    :data:`DUE_CLOCK` when no time was said. None when it says no day or time."""
    if not phrase:
        return None
    instant = _instant(phrase)
    if instant is not None:
        return instant
    zone = ZoneInfo(call.company.timezone)
    call_day = (call.started_at or call.created_at).astimezone(zone).date()
    day, clock = resolve_day(phrase, call_day), resolve_clock(phrase)
    if day is None and clock is None:
        return None
    return datetime.datetime.combine(day or call_day, clock or DUE_CLOCK, tzinfo=zone)


# --- key signals ---------------------------------------------------------------------------


def signals_from(fields: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """{type: (severity, detail)} of the key signals an analysis raises."""
    K, Sev = KeySignal.Type, KeySignal.Severity
    found: dict[str, tuple[str, str]] = {}
    urgency = fields.get("urgency")
    if urgency in ("high", "emergency"):
        found[K.URGENT] = (Sev.HIGH if urgency == "emergency" else Sev.MEDIUM, f"urgency {urgency}")
    objections = [o for o in (fields.get("objections") or []) if isinstance(o, dict)]
    if len(objections) >= MANY_OBJECTIONS:
        categories = ", ".join(str(o.get("category")) for o in objections)
        found[K.MANY_OBJECTIONS] = (Sev.MEDIUM, f"{len(objections)} objections: {categories}")
    if fields.get("booking_status") == "service_not_offered":
        found[K.SERVICE_NOT_OFFERED] = (Sev.LOW, str(fields.get("intent") or "")[:200])
    sentiment = fields.get("sentiment")
    if isinstance(sentiment, int | float | Decimal) and sentiment <= NEGATIVE_SENTIMENT:
        severity = Sev.HIGH if sentiment <= STRONGLY_NEGATIVE_SENTIMENT else Sev.MEDIUM
        found[K.NEGATIVE_SENTIMENT] = (severity, f"sentiment {float(sentiment):.2f}")
    competitor = [o for o in objections if o.get("category") == "competitor"]
    if competitor:
        found[K.COMPETITOR_MENTIONED] = (Sev.MEDIUM, str(competitor[0].get("quote") or "")[:500])
    return found


def apply_signals(call: Call, version: int, fields: dict[str, Any]) -> list[KeySignal]:
    """One signal per (call, type); a later version updates them, and withdraws the
    unacknowledged ones it no longer raises (an acknowledged one stays, as history)."""
    found = signals_from(fields)
    signals = []
    for kind, (severity, detail) in found.items():
        values = {"severity": severity, "detail": detail, "analysis_version": version}
        signal, _ = KeySignal.objects.update_or_create(
            call=call,
            type=kind,
            defaults=values,
            create_defaults={
                **values,
                "company_id": call.company_id,
                "contact_id": call.contact_id,
            },
        )
        signals.append(signal)
    KeySignal.objects.filter(call=call, acknowledged_at__isnull=True).exclude(
        type__in=list(found)
    ).delete()
    return signals
