"""Reads for leads, appointments, tasks and signals: what each role may see.

The company comes first; every lookup by id includes it. The role rules (docs/outcomes.md,
"Who sees what") live here once, and the lists, the details, the contact timeline and the
calls a rep may see all go through them:

- a manager sees the whole tenant;
- a CSR sees the tenant's leads, appointments and signals, and the tasks assigned to them;
- a sales rep sees the leads, appointments and tasks assigned to them, and no signal.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from appointments.models import Appointment, KeySignal, Lead, LeadStatusChange, Task
from otto.models import Company, Contact, Role, User
from otto.sql import ProbedExists


def visible_leads(company: Company, *, user: User, role: str) -> QuerySet[Lead]:
    leads = Lead.objects.filter(company=company).select_related("contact", "assigned_rep")
    if role in (Role.MANAGER, Role.CSR):
        return leads
    if role == Role.SALES_REP:
        return leads.filter(assigned_rep=user)
    return leads.none()


def visible_appointments(company: Company, *, user: User, role: str) -> QuerySet[Appointment]:
    rows = Appointment.objects.filter(company=company).select_related(
        "contact", "assigned_rep", "created_by"
    )
    if role in (Role.MANAGER, Role.CSR):
        return rows
    if role == Role.SALES_REP:
        return rows.filter(assigned_rep=user)
    return rows.none()


def _tasks(company: Company) -> QuerySet[Task]:
    return Task.objects.filter(company=company).select_related(
        "contact", "assignee", "completed_by", "created_by"
    )


def task_with_people(company: Company, task_id: int) -> Task:
    return _tasks(company).get(pk=task_id)


def visible_tasks(company: Company, *, user: User, role: str) -> QuerySet[Task]:
    tasks = _tasks(company)
    if role == Role.MANAGER:
        return tasks
    if role in (Role.CSR, Role.SALES_REP):
        return tasks.filter(assignee=user)
    return tasks.none()


def visible_signals(company: Company, *, user: User, role: str) -> QuerySet[KeySignal]:
    signals = KeySignal.objects.filter(company=company).select_related("contact", "acknowledged_by")
    return signals if role in (Role.MANAGER, Role.CSR) else signals.none()


def visible_contacts(company: Company, *, user: User, role: str) -> QuerySet[Contact]:
    """Contacts a task may name: the office's whole tenant, a rep's leads' and
    appointments' contacts."""
    contacts = Contact.objects.filter(company=company)
    if role in (Role.MANAGER, Role.CSR):
        return contacts
    if role == Role.SALES_REP:
        contact = OuterRef("pk")
        return contacts.filter(
            Q(Exists(Lead.objects.filter(contact=contact, assigned_rep=user)))
            | Q(Exists(Appointment.objects.filter(contact=contact, assigned_rep=user)))
        )
    return contacts.none()


def rep_calls(user: User) -> Q:
    """The calls behind a rep's work (registered as calls' rep scope): the calls of a
    contact whose active lead is assigned to them, and the calls their appointments were
    booked on.

    Uncorrelated ``IN`` subqueries over the rep's own rows (their partial indexes), which
    PostgreSQL hashes once per query: correlated ``EXISTS`` probes cost two index lookups
    per call of the tenant, once per rep in metrics/reps/ (docs/performance.md)."""
    leads = Lead.objects.filter(is_active=True, assigned_rep=user).values("contact_id")
    visits = Appointment.objects.filter(assigned_rep=user, call__isnull=False).values("call_id")
    return Q(contact_id__in=leads) | Q(pk__in=visits)


def active_lead(company: Company, contact_id: int) -> Lead | None:
    return Lead.objects.filter(company=company, contact_id=contact_id, is_active=True).first()


def lead_history(company: Company, lead: Lead) -> QuerySet[LeadStatusChange]:
    """Every status change of the lead, oldest first: the history reads as its life."""
    return (
        LeadStatusChange.objects.filter(company=company, lead=lead)
        .select_related("actor")
        .order_by("created_at", "pk")
    )


def overlapping_appointments(company: Company, appointment: Appointment, rep_id: int) -> list[int]:
    """Ids of the rep's other non-cancelled appointments whose time overlaps this one's."""
    return list(
        Appointment.objects.filter(
            company=company,
            assigned_rep_id=rep_id,
            scheduled_start__lt=appointment.scheduled_end,
            scheduled_end__gt=appointment.scheduled_start,
        )
        .exclude(status=Appointment.Status.CANCELLED)
        .exclude(pk=appointment.pk)
        .order_by("scheduled_start", "pk")
        .values_list("pk", flat=True)
    )


# The contact timeline's sources (registered in appointments.apps): the same role rules.


def contact_lead_changes(
    company: Company, contact: Contact, *, user: User, role: str
) -> QuerySet[LeadStatusChange]:
    leads = visible_leads(company, user=user, role=role).filter(contact=contact)
    return LeadStatusChange.objects.filter(company=company, lead__in=leads).select_related("actor")


def contact_appointments(
    company: Company, contact: Contact, *, user: User, role: str
) -> QuerySet[Appointment]:
    return visible_appointments(company, user=user, role=role).filter(contact=contact)


def contact_tasks(company: Company, contact: Contact, *, user: User, role: str) -> QuerySet[Task]:
    return visible_tasks(company, user=user, role=role).filter(contact=contact)


# The KPIs' outcome figures (registered with analysis.kpis in appointments.apps).


def booked_call() -> Q:
    """A call an appointment was made from (a condition over Call): booked, whatever the
    analysis says."""
    return Q(ProbedExists(Appointment.objects.filter(call=OuterRef("pk"))))


def call_reps() -> dict[str, Any]:
    """The sales reps a call is theirs through (:func:`rep_calls`, as columns for the KPIs'
    grouping): the rep of the contact's active lead, and the rep of the appointment booked
    on the call. One of each at most (one active lead per contact, one appointment per
    call), so neither multiplies a call."""
    lead = Lead.objects.filter(contact=OuterRef("contact"), is_active=True)
    visit = Appointment.objects.filter(call=OuterRef("pk"))
    return {
        "lead_rep": Subquery(lead.values("assigned_rep")[:1]),
        "visit_rep": Subquery(visit.values("assigned_rep")[:1]),
    }


def kpi_tasks(
    company: Company, start: datetime.datetime, end: datetime.datetime, assignee: User | None
) -> dict[str, int]:
    """Tasks created in [start, end) that are still open, and those of them past due."""
    tasks = Task.objects.filter(
        company=company, status=Task.Status.OPEN, created_at__gte=start, created_at__lt=end
    )
    if assignee is not None:
        tasks = tasks.filter(assignee=assignee)
    return tasks.aggregate(
        open_tasks=Count("pk"), overdue_tasks=Count("pk", filter=Q(due_at__lt=timezone.now()))
    )


def kpi_appointments(
    company: Company, start: datetime.datetime, end: datetime.datetime, reps: list[int]
) -> dict[int, dict[str, int]]:
    """Per rep, the appointments assigned to them scheduled in [start, end) (cancelled
    ones left out), those won, and those decided (won or lost)."""
    Outcome = Appointment.Outcome
    rows = (
        Appointment.objects.filter(
            company=company,
            assigned_rep__in=reps,
            scheduled_start__gte=start,
            scheduled_start__lt=end,
        )
        .exclude(status=Appointment.Status.CANCELLED)
        .values("assigned_rep")
        .annotate(
            appointments=Count("pk"),
            won=Count("pk", filter=Q(outcome=Outcome.WON)),
            decided=Count("pk", filter=Q(outcome__in=[Outcome.WON, Outcome.LOST])),
        )
    )
    return {
        row["assigned_rep"]: {k: row[k] for k in ("appointments", "won", "decided")} for row in rows
    }
