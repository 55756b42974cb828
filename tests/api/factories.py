"""One factory per tenant-owned model behind an API route, for the isolation suite.

``FACTORIES[Model](company)`` returns a saved instance owned by ``company``. When a new
viewset is routed under /api/v1/, tests/api/test_isolation.py fails until its model has a
factory here: register it with :func:`factory`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import factory as factory_boy
from django import forms
from django.db.models import Model

from appointments.models import Appointment, KeySignal, Lead, Task
from calls.models import Call
from messaging.models import FollowUp, MissedCallRecovery, Thread
from otto.models import AuditAction, AuditEvent, Company, Contact

FACTORIES: dict[type[Model], Callable[[Company], Model]] = {}

_numbers = itertools.count(1000)


def factory(model: type[Model]) -> Callable:
    def register(make: Callable[[Company], Model]) -> Callable[[Company], Model]:
        FACTORIES[model] = make
        return make

    return register


class ContactFactory(factory_boy.django.DjangoModelFactory):
    class Meta:
        model = Contact

    phone = factory_boy.LazyFunction(lambda: f"+1303555{next(_numbers):04d}")
    name = factory_boy.Sequence(lambda n: f"Customer {n}")
    email = factory_boy.Sequence(lambda n: f"customer{n}@example.com")
    address = "1 Main St"


@factory(Contact)
def make_contact(company: Company) -> Contact:
    return ContactFactory(company=company)


class CallFactory(factory_boy.django.DjangoModelFactory):
    class Meta:
        model = Call

    external_id = factory_boy.Sequence(lambda n: f"CAL{n:032x}")
    legacy_id = factory_boy.Sequence(lambda n: str(900000 + n))
    direction = Call.Direction.INBOUND
    answered = True
    started_at = factory_boy.Sequence(
        lambda n: datetime(2026, 3, 1, 9, tzinfo=UTC) + timedelta(minutes=n)
    )
    duration_seconds = 95
    customer_number = factory_boy.LazyFunction(lambda: f"+1720555{next(_numbers):04d}")
    tracking_number = "+13035550100"
    customer_name = "Pat Caller"
    stage = Call.Stage.RECORDED


@factory(Call)
def make_call(company: Company) -> Call:
    return CallFactory(company=company, contact=ContactFactory(company=company))


@factory(Thread)
def make_thread(company: Company) -> Thread:
    contact = ContactFactory(company=company)
    return Thread.objects.create(company=company, contact=contact, phone=contact.phone)


class LeadFactory(factory_boy.django.DjangoModelFactory):
    class Meta:
        model = Lead

    contact = factory_boy.LazyAttribute(lambda o: ContactFactory(company=o.company))
    status = Lead.Status.NEW
    source = "Google Ads"


@factory(Lead)
def make_lead(company: Company) -> Lead:
    return LeadFactory(company=company)


class AppointmentFactory(factory_boy.django.DjangoModelFactory):
    class Meta:
        model = Appointment

    lead = factory_boy.LazyAttribute(lambda o: LeadFactory(company=o.company))
    contact = factory_boy.LazyAttribute(lambda o: o.lead.contact)
    scheduled_start = factory_boy.Sequence(
        lambda n: datetime(2026, 3, 10, 14, tzinfo=UTC) + timedelta(days=n)
    )
    scheduled_end = factory_boy.LazyAttribute(lambda o: o.scheduled_start + timedelta(hours=2))
    address = "12 Elm St, Denver, CO"
    service_type = "Furnace repair"


@factory(Appointment)
def make_appointment(company: Company) -> Appointment:
    return AppointmentFactory(company=company)


class TaskFactory(factory_boy.django.DjangoModelFactory):
    class Meta:
        model = Task

    type = Task.Type.CALL_BACK
    description = "Call the customer back about the quote"
    contact = factory_boy.LazyAttribute(lambda o: ContactFactory(company=o.company))


@factory(Task)
def make_task(company: Company) -> Task:
    return TaskFactory(company=company)


class KeySignalFactory(factory_boy.django.DjangoModelFactory):
    class Meta:
        model = KeySignal

    type = KeySignal.Type.URGENT
    severity = KeySignal.Severity.HIGH
    call = factory_boy.LazyAttribute(
        lambda o: CallFactory(company=o.company, contact=ContactFactory(company=o.company))
    )
    contact = factory_boy.LazyAttribute(lambda o: o.call.contact)
    detail = "No heat with a newborn at home"


@factory(KeySignal)
def make_signal(company: Company) -> KeySignal:
    return KeySignalFactory(company=company)


@factory(MissedCallRecovery)
def make_recovery(company: Company) -> MissedCallRecovery:
    call = CallFactory(
        company=company, contact=ContactFactory(company=company), answered=False, stage="skipped"
    )
    return MissedCallRecovery.objects.create(
        company=company,
        call=call,
        contact=call.contact,
        started_at=call.started_at,
        cooldown_until=call.started_at + timedelta(hours=24),
        next_action_at=call.started_at + timedelta(hours=2),
        step=1,
    )


@factory(FollowUp)
def make_followup(company: Company) -> FollowUp:
    call = CallFactory(company=company, contact=ContactFactory(company=company))
    return FollowUp.objects.create(
        company=company,
        call=call,
        contact=call.contact,
        phone=call.contact.phone,
        channel=FollowUp.Channel.SMS,
        body="Hi, following up on your call.",
        drafted_by=FollowUp.DraftedBy.TEMPLATE,
        scheduled_for=call.started_at + timedelta(hours=1),
    )


@factory(AuditEvent)
def make_audit_event(company: Company) -> AuditEvent:
    return AuditEvent.objects.create(
        company=company, action=AuditAction.CALL_RETRIED, target_type="call", target_id="1"
    )


def company_admin_form(client, company: Company, **changes: str) -> dict[str, object]:
    """What the Company admin's change page posts as rendered for ``company``: every field
    at its current value (inlines left as they are), with ``changes``. Tests post this, so
    a new setting on the form never needs adding to each of them."""
    response = client.get(f"/admin/otto/company/{company.pk}/change/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    data: dict[str, object] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    for inline in response.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return data | changes
