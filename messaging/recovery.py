"""Missed-call recovery: the text-back, the nudges and the CSR task (docs/recovery.md).

A recovery's steps are due rows: ``step`` counts the steps done and ``next_action_at`` says
when the next is due. Step 0 is the text-back, steps 1…n the nudges at the tenant's
``recovery_nudge_hours`` after the missed call, step n+1 the CSR task at
``recovery_escalate_hours``. :func:`run_step` claims a due step with a compare-and-set on
``step``, so two clusters never take one step twice; a cluster that was down runs only the
latest step that fell due (a nudge missed for hours is sent once, and the older ones not
at all). The stop conditions (:func:`stop_reason`) are checked inside that claim, and again
when the message is handed to Twilio (:func:`messaging.sending.deliver`).

Every text goes through :func:`messaging.services.send_message`, i.e. the gate: quiet hours
defer a step's message to the window's opening, never skip it.
"""

from __future__ import annotations

import datetime
import logging

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, QuerySet
from django.db.models.expressions import Combinable
from django.utils import timezone

from analysis.models import CallAnalysis
from analysis.selectors import effective_fields
from appointments.models import Appointment, Task
from calls.models import Call
from messaging import kpi_marks, selectors, services
from messaging.models import ConsentEvent, Message, MissedCallRecovery, Thread
from otto.models import Company

logger = logging.getLogger(__name__)

Status = MissedCallRecovery.Status
COOLDOWN = datetime.timedelta(hours=24)
# A call missed longer ago than this is history (a backfill, a replayed webhook): no text.
TOO_OLD = datetime.timedelta(hours=24)

DEFAULT_TEXT_BACK = (
    "Hi, this is {company}. Sorry we missed your call! How can we help? "
    "Reply here and we will get right back to you. Reply STOP to opt out."
)
DEFAULT_NUDGE = (
    "{company}: just following up on your call. Reply here whenever suits you, or STOP to opt out."
)

REPLIED, PERSON_TEXTED, OPTED_OUT = services.REPLIED, services.PERSON_TEXTED, services.OPTED_OUT
ANSWERED = "a later call with the contact was answered"
SPAM = "the missed call's analysis says spam"
BOOKED = "an appointment was booked"
# The analysis' intent for a robocall or a sales pitch (the analyzer's schema has no
# other spam field; the sandbox's rules answer it for spam).
SPAM_INTENT = "spam"


def offsets(company: Company) -> list[datetime.timedelta]:
    """When each step is due after the missed call: the text-back, the nudges, the task."""
    hours = [0, *sorted(int(h) for h in company.recovery_nudge_hours or [])]
    hours.append(company.recovery_escalate_hours)
    return [datetime.timedelta(hours=h) for h in hours]


def start(call: Call, now: datetime.datetime | None = None) -> MissedCallRecovery | None:
    """Start the recovery of a missed call and send its text-back (calls'
    ``register_missed_call`` hook, inside the transaction that ended the call's ingest).

    None when the tenant has recovery off, the number is on its block list, the call is
    more than a day old (a backfill), or the contact already has a recovery within 24 hours
    (the exclusion constraint refuses the row)."""
    now = now or timezone.now()
    company = call.company
    if not company.recovery_enabled or call.contact_id is None:
        return None
    if call.customer_number in (company.recovery_block_list or []):
        logger.info("call %s: %s is on the block list; no recovery", call.pk, call.customer_number)
        return None
    started = min(call.started_at or now, now)
    if now - started > TOO_OLD:
        return None
    try:
        with transaction.atomic():
            recovery = MissedCallRecovery.objects.create(
                company=company,
                call=call,
                contact_id=call.contact_id,
                started_at=started,
                cooldown_until=started + COOLDOWN,
                next_action_at=now,
            )
    except IntegrityError:
        logger.info("call %s: its contact has a recovery within 24 h; none started", call.pk)
        return None
    run_step(recovery.pk, now)
    return recovery


def stop_reason(recovery: MissedCallRecovery) -> tuple[str, str] | None:
    """(status, reason) when something since the recovery started ends it, else None."""
    company = recovery.company
    contact = recovery.contact
    latest = selectors.latest_consent(company, contact.phone)
    if latest is not None and latest[0] == ConsentEvent.Action.OPT_OUT:
        return Status.STOPPED, OPTED_OUT
    messages = Message.objects.filter(
        company=company, thread__contact=contact, created_at__gt=recovery.created_at
    )
    if messages.filter(direction=Message.Direction.INBOUND).exists():
        return Status.REPLIED, REPLIED
    answered = Call.objects.filter(
        company=company, contact=contact, answered=True, started_at__gt=recovery.started_at
    ).exclude(pk=recovery.call_id)
    if answered.exists():
        return Status.STOPPED, ANSWERED
    if is_spam(recovery.call_id):
        return Status.STOPPED, SPAM
    manual = messages.filter(direction=Message.Direction.OUTBOUND, kind=Message.Kind.MANUAL)
    if manual.exclude(status=Message.Status.BLOCKED).exists():
        return Status.STOPPED, PERSON_TEXTED
    return None


def end(recovery: MissedCallRecovery, status: str, reason: str = "") -> None:
    """End the recovery if it is still active."""
    services.stop_recoveries(recovery.company, status, reason, pk=recovery.pk)


def run_step(recovery_id: int, now: datetime.datetime | None = None) -> str | None:
    """Take the recovery's latest due step, once; what it did, or None when not ours."""
    now = now or timezone.now()
    recovery = (
        MissedCallRecovery.objects.select_related("company", "contact")
        .filter(pk=recovery_id, status=Status.ACTIVE, next_action_at__lte=now)
        .first()
    )
    if recovery is None:
        return None
    due = offsets(recovery.company)
    # The latest step that fell due: older ones missed while the cluster was down are
    # passed over, not sent in a burst.
    step = max(
        (k for k in range(recovery.step, len(due)) if recovery.started_at + due[k] <= now),
        default=recovery.step,
    )
    following = step + 1
    next_at = recovery.started_at + due[following] if following < len(due) else None
    with transaction.atomic():
        claimed = MissedCallRecovery.objects.filter(
            pk=recovery.pk, status=Status.ACTIVE, step=recovery.step
        ).update(step=following, next_action_at=next_at, claimed_at=now)
        if not claimed:
            return None  # another worker took this step
        stopped = stop_reason(recovery)
        if stopped is not None:
            end(recovery, *stopped)
            return stopped[0]
        if step == len(due) - 1:
            _escalate(recovery, now)
            end(recovery, Status.ESCALATED)
            return Status.ESCALATED
        _text(recovery, first=step == 0, now=now)
    return f"step {step}"


def _text(recovery: MissedCallRecovery, *, first: bool, now: datetime.datetime) -> None:
    company = recovery.company
    template = (company.recovery_text if first else company.recovery_nudge_text).strip()
    # replace, not format: a tenant's text may hold any braces
    body = (template or (DEFAULT_TEXT_BACK if first else DEFAULT_NUDGE)).replace(
        "{company}", company.name
    )
    thread, _ = Thread.objects.get_or_create(
        company=company, contact=recovery.contact, defaults={"phone": recovery.contact.phone}
    )
    try:
        services.send_message(
            company, thread, body=body, kind=Message.Kind.RECOVERY, recovery=recovery, now=now
        )
    except services.SendRefused as refused:
        # Stored blocked with the reason; automation without any window stops.
        end(recovery, Status.STOPPED, f"the gate refused the text: {refused.decision.reason}")


def _escalate(recovery: MissedCallRecovery, now: datetime.datetime) -> None:
    """The CSR task, once per recovery: unique per (call, type, dedupe key)."""
    try:
        with transaction.atomic():
            Task.objects.create(
                company=recovery.company,
                type=Task.Type.CALL_BACK,
                description="Missed call not recovered by text: call the customer back.",
                due_at=now,
                contact=recovery.contact,
                call_id=recovery.call_id,
                source=Task.Source.RECOVERY,
                dedupe_key=f"recovery:{recovery.pk}",
            )
    except IntegrityError:
        logger.info("recovery %s: its escalation task exists already", recovery.pk)


def check_before_send(recovery_id: int) -> str:
    """At Twilio time: why a message of this recovery must not go (the recovery ended, or
    a stop condition arrived since its step was claimed), or ``""``."""
    recovery = (
        MissedCallRecovery.objects.select_related("company", "contact")
        .filter(pk=recovery_id)
        .first()
    )
    if recovery is None:
        return ""
    stopped = stop_reason(recovery)
    if stopped is not None:
        end(recovery, *stopped)
        return f"recovery stopped: {stopped[1]}"
    if recovery.status not in (Status.ACTIVE, Status.ESCALATED):
        return f"recovery {recovery.status}: {recovery.stopped_reason}".strip(": ")
    return ""


# --- what ends a recovery at the event (registered in messaging.apps) -----------------


def window(company: Company) -> datetime.timedelta:
    """How long after the missed call a booking still recovers it (the tenant's)."""
    return datetime.timedelta(days=company.recovery_window_days)


def bookings(
    company: Company,
    contact: int | OuterRef | Combinable,
    started_at: datetime.datetime | OuterRef | Combinable,
) -> QuerySet[Appointment]:
    """The one definition of "recovered": the contact's appointments, not cancelled, made
    from the missed call's time to the tenant's window after it. Values, or ``OuterRef``s
    for the recovery KPI's subquery (messaging.kpis)."""
    return Appointment.objects.filter(
        company=company,
        contact=contact,
        created_at__gte=started_at,
        created_at__lt=started_at + window(company),
    ).exclude(status=Appointment.Status.CANCELLED)


def on_appointment(appointment: Appointment) -> int:
    """A booked appointment recovers the contact's recoveries it follows within the
    window, whatever state they ended in (Appointment's post_save, on create)."""
    if appointment.contact_id is None or appointment.status == Appointment.Status.CANCELLED:
        return 0
    company = Company.objects.get(pk=appointment.company_id)
    made = appointment.created_at
    recovered = MissedCallRecovery.objects.filter(
        company=company,
        contact_id=appointment.contact_id,
        started_at__lte=made,
        started_at__gt=made - window(company),
    ).exclude(status=Status.RECOVERED)
    return kpi_marks.update_recoveries(
        recovered, status=Status.RECOVERED, stopped_reason=BOOKED, next_action_at=None
    )


def on_answered_call(call: Call) -> int:
    """A later answered call with the contact stops their active recoveries when it is
    ingested (calls' ``register_answered_call`` hook)."""
    if call.contact_id is None or call.started_at is None:
        return 0
    return services.stop_recoveries(
        call.company,
        Status.STOPPED,
        ANSWERED,
        contact_id=call.contact_id,
        started_at__lt=call.started_at,
    )


def is_spam(call_id: int) -> bool:
    analysis = CallAnalysis.objects.filter(call_id=call_id, is_current=True).first()
    return analysis is not None and _says_spam(analysis)


def _says_spam(analysis: CallAnalysis) -> bool:
    return effective_fields(analysis).get("intent") == SPAM_INTENT


def on_analysis(call: Call, analysis: CallAnalysis) -> int:
    """The missed call's analysis (it comes after the text-back) says spam: its recovery
    stops, so no nudge follows (appointments' ``register_applied`` hook)."""
    if not _says_spam(analysis):
        return 0
    return services.stop_recoveries(call.company, Status.STOPPED, SPAM, call_id=call.pk)
