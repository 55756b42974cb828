"""Writes to leads, appointments, tasks and signals that people and the pipeline share.

The ``applied`` stage (``appointments.outcomes``) and the API both change a lead's status
through :func:`change_lead_status`, so every change writes exactly one history row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from analysis import rollup
from appointments.models import Appointment, KeySignal, Lead, LeadStatusChange, Task
from appointments.selectors import overlapping_appointments
from calls.models import Call
from otto.models import Membership, Role

if TYPE_CHECKING:
    from calls.models import Call
    from otto.models import Company, User


def change_lead_status(
    lead: Lead,
    to_status: str,
    *,
    actor: User | None,
    reason: str = "",
    call: Call | None = None,
    analysis_version: int | None = None,
) -> bool:
    """Move ``lead`` to ``to_status`` and write its history row; False (nothing written)
    when it is already there. ``actor`` is None for the pipeline. A closed status
    (won, lost) makes the lead inactive, so the contact's next call opens a new lead."""
    to_status = Lead.Status(to_status)
    if lead.status == to_status:
        return False
    closing = to_status in Lead.CLOSED
    with transaction.atomic():
        history = LeadStatusChange(
            company_id=lead.company_id,
            lead=lead,
            from_status=lead.status,
            to_status=to_status,
            reason=reason[:255],
            actor=actor,
            call=call,
            analysis_version=analysis_version,
        )
        lead.status = to_status
        lead.is_active = not closing
        lead.closed_at = timezone.now() if closing else None
        lead.save(update_fields=["status", "is_active", "closed_at", "updated_at"])
        history.save()
    return True


def open_lead(
    company_id: int,
    contact_id: int,
    *,
    status: str = Lead.Status.NEW,
    source: str = "",
    actor: User | None = None,
    reason: str = "",
    call: Call | None = None,
    analysis_version: int | None = None,
) -> Lead:
    """A new active lead for the contact with its first history row (from blank). The
    partial unique constraint refuses a second active lead: callers that may race (the
    pipeline) take the contact's active lead instead, inside their own transaction."""
    with transaction.atomic():
        lead = Lead.objects.create(
            company_id=company_id, contact_id=contact_id, status=status, source=source[:200]
        )
        LeadStatusChange.objects.create(
            company_id=company_id,
            lead=lead,
            from_status="",
            to_status=status,
            reason=reason[:255],
            actor=actor,
            call=call,
            analysis_version=analysis_version,
        )
    return lead


# --- people's writes through the API (docs/outcomes.md, "Who sees what") -------------------


class NotARep(Exception):
    """The user is not an active sales rep of the company (or of any company we know)."""


class DoubleBooking(Exception):
    """The rep already has these non-cancelled appointments overlapping the time."""

    def __init__(self, conflicts: list[int]) -> None:
        super().__init__(f"The rep already has appointments {conflicts} at this time.")
        self.conflicts = conflicts


class ActiveLeadExists(Exception):
    """Reopening a closed lead while its contact already has another active lead."""


class TaskCancelled(Exception):
    """A cancelled task cannot be completed; reopen it first."""


def update_lead(company: Company, lead: Lead, *, actor: User, changes: dict[str, Any]) -> Lead:
    """Apply a person's PATCH: ``status`` (through :func:`change_lead_status`, so it writes
    a history row with the actor and ``reason``), ``assigned_rep``, ``score``,
    ``deal_size``. A closed lead reopened while its contact has another active lead is
    :class:`ActiveLeadExists`, and nothing is written."""
    changes = dict(changes)
    status, reason = changes.pop("status", None), changes.pop("reason", "")
    try:
        with transaction.atomic():
            lead = Lead.objects.select_for_update(of=("self",)).get(company=company, pk=lead.pk)
            if status is not None:
                change_lead_status(lead, status, actor=actor, reason=reason or "changed by hand")
            for field, value in changes.items():
                setattr(lead, field, value)
            if changes:
                lead.save(update_fields=[*changes, "updated_at"])
    except IntegrityError as exc:
        if "appointments_lead_one_active_per_contact" in str(exc):
            raise ActiveLeadExists from None
        raise
    return lead


def _lock_appointment(company: Company, appointment_id: int) -> Appointment:
    # Always the appointment first, then the rep's membership: one lock order, no deadlock.
    return Appointment.objects.select_for_update(of=("self",)).get(
        company=company, pk=appointment_id
    )


def _lock_rep_schedule(company: Company, rep_id: int) -> Membership | None:
    """Lock the rep's membership row: every write that checks a rep's schedule takes it,
    so two of them for one rep run one after the other and the second sees the first."""
    return (
        Membership.objects.select_for_update()
        .filter(company=company, user_id=rep_id)
        .only("pk", "role", "revoked_at")
        .first()
    )


def _check_free(company: Company, appointment: Appointment, rep_id: int) -> None:
    if appointment.status == Appointment.Status.CANCELLED:
        return
    conflicts = overlapping_appointments(company, appointment, rep_id)
    if conflicts:
        raise DoubleBooking(conflicts)


def assign_appointment(
    company: Company, appointment: Appointment, rep_id: int, *, allow_double_booking: bool = False
) -> Appointment:
    """Put the appointment on a rep's schedule. The rep must be an active sales rep of the
    company (:class:`NotARep`); an overlap with another of their non-cancelled appointments
    is :class:`DoubleBooking` unless allowed. Safe under concurrent assigns: the check and
    the write happen under the lock on the rep's membership. The lead gets the rep too when
    it has none."""
    with transaction.atomic():
        appointment = _lock_appointment(company, appointment.pk)
        membership = _lock_rep_schedule(company, rep_id)
        if (
            membership is None
            or membership.role != Role.SALES_REP
            or membership.revoked_at is not None
        ):
            raise NotARep
        if not allow_double_booking:
            _check_free(company, appointment, rep_id)
        appointment.assigned_rep_id = rep_id
        appointment.save(update_fields=["assigned_rep", "updated_at"])
        took = Lead.objects.filter(
            company=company, pk=appointment.lead_id, assigned_rep=None
        ).update(assigned_rep_id=rep_id)
        if took:  # the lead's contact's calls are the rep's now (the KPIs' rep rows)
            rollup.mark_calls(Call.objects.filter(contact_id=appointment.contact_id))
    return appointment


def update_appointment(
    company: Company,
    appointment: Appointment,
    *,
    actor: User,
    changes: dict[str, Any],
    allow_double_booking: bool = False,
) -> Appointment:
    """Apply a person's PATCH: reschedule (``scheduled_start``/``scheduled_end``), cancel
    or reinstate (``status``), ``outcome``, ``deal_size``, ``notes``, ``service_type``.

    A move or a reinstatement of an assigned appointment checks the rep's schedule as
    :func:`assign_appointment` does. Outcome ``won`` closes the lead ``closed_won`` and
    copies the deal size onto it (a later deal size follows); ``lost`` closes a still
    active lead ``closed_lost``. Everything, the lead included, is one transaction."""
    with transaction.atomic():
        appointment = _lock_appointment(company, appointment.pk)
        before = {field: getattr(appointment, field) for field in changes}
        for field, value in changes.items():
            setattr(appointment, field, value)
        moved = any(
            before[field] != getattr(appointment, field)
            for field in ("scheduled_start", "scheduled_end")
            if field in changes
        )
        reinstated = before.get("status") == Appointment.Status.CANCELLED and (
            appointment.status != Appointment.Status.CANCELLED
        )
        rep_id = appointment.assigned_rep_id
        if rep_id is not None and (moved or reinstated) and not allow_double_booking:
            _lock_rep_schedule(company, rep_id)
            _check_free(company, appointment, rep_id)
        if changes:
            appointment.save(update_fields=[*changes, "updated_at"])
        if {"outcome", "deal_size"} & set(changes):
            _apply_outcome(company, appointment, actor=actor)
    return appointment


def _apply_outcome(company: Company, appointment: Appointment, *, actor: User) -> None:
    lead = Lead.objects.select_for_update(of=("self",)).get(company=company, pk=appointment.lead_id)
    reason = f"appointment {appointment.pk} {appointment.outcome}"
    if appointment.outcome == Appointment.Outcome.WON:
        change_lead_status(lead, Lead.Status.CLOSED_WON, actor=actor, reason=reason)
        if appointment.deal_size is not None and lead.deal_size != appointment.deal_size:
            lead.deal_size = appointment.deal_size
            lead.save(update_fields=["deal_size", "updated_at"])
    elif appointment.outcome == Appointment.Outcome.LOST and lead.is_active:
        change_lead_status(lead, Lead.Status.CLOSED_LOST, actor=actor, reason=reason)


def create_task(company: Company, *, actor: User, **fields: Any) -> Task:
    """A manual task (source ``manual``, created by ``actor``), assigned to ``actor``
    unless it names an assignee. The contact follows from the lead or the call when only
    they are given."""
    fields.setdefault("assignee", actor)
    if fields.get("contact") is None:
        fields.pop("contact", None)
        linked = fields.get("lead") or fields.get("call")
        fields["contact_id"] = getattr(linked, "contact_id", None)
    return Task.objects.create(
        company=company, source=Task.Source.MANUAL, created_by=actor, **fields
    )


def update_task(company: Company, task: Task, *, actor: User, changes: dict[str, Any]) -> Task:
    """Apply a person's PATCH (description, due date, assignee, status). ``done`` records
    who completed it and when; back to ``open`` or ``cancelled`` clears that."""
    with transaction.atomic():
        task = Task.objects.select_for_update(of=("self",)).get(company=company, pk=task.pk)
        status = changes.get("status")
        if status is not None and status != task.status:
            done = status == Task.Status.DONE
            task.completed_at = timezone.now() if done else None
            task.completed_by = actor if done else None
            changes = {
                **changes,
                "completed_at": task.completed_at,
                "completed_by": task.completed_by,
            }
        for field, value in changes.items():
            setattr(task, field, value)
        if changes:
            task.save(update_fields=[*changes, "updated_at"])
    return task


def complete_task(company: Company, task: Task, *, actor: User) -> Task:
    """Mark an open task done. Idempotent: a task already done stays as it was (its first
    completion is kept). A cancelled task is :class:`TaskCancelled`."""
    Task.objects.filter(company=company, pk=task.pk, status=Task.Status.OPEN).update(
        status=Task.Status.DONE, completed_at=timezone.now(), completed_by=actor
    )
    task.refresh_from_db()
    if task.status == Task.Status.CANCELLED:
        raise TaskCancelled
    return task


def acknowledge_signal(company: Company, signal: KeySignal, *, actor: User) -> KeySignal:
    """Record who saw the signal and when. Idempotent: the first acknowledgement is kept."""
    KeySignal.objects.filter(company=company, pk=signal.pk, acknowledged_at=None).update(
        acknowledged_at=timezone.now(), acknowledged_by=actor
    )
    signal.refresh_from_db()
    return signal
