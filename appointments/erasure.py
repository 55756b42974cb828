"""What appointments holds on a person, for :mod:`otto.erasure`: their leads (with their
status history), appointments, tasks and key signals, and the geocoder's cached answer
for an address only their appointments used."""

from __future__ import annotations

from django.db.models import Q

from appointments.models import (
    Appointment,
    GeocodedAddress,
    KeySignal,
    Lead,
    LeadStatusChange,
    Task,
)
from calls.erasure import person_calls
from integrations.google_maps.client import normalise_address
from otto.erasure import Erasure, Person, Rows, rows


def _of(person: Person, *, lead: bool = False) -> Q:
    """Rows linked to the person's contact or calls (and leads, where ``lead``)."""
    condition = Q(call__in=person_calls(person))
    if person.contact is not None:
        condition |= Q(contact=person.contact)
        if lead:
            condition |= Q(lead__contact=person.contact)
    return condition


def _leads(person: Person):
    if person.contact is None:
        return Lead.objects.none()
    return Lead.objects.filter(company=person.company, contact=person.contact)


def _appointments(person: Person):
    return Appointment.objects.filter(company=person.company).filter(_of(person, lead=True))


def _tasks(person: Person):
    return Task.objects.filter(company=person.company).filter(_of(person, lead=True))


def _signals(person: Person):
    return KeySignal.objects.filter(company=person.company).filter(_of(person))


def _only_their_addresses(person: Person) -> list[str]:
    theirs = {
        normalise_address(address)[:300]
        for address in _appointments(person).values_list("address", flat=True)
        if address
    }
    others = {
        normalise_address(address)[:300]
        for address in Appointment.objects.filter(company=person.company)
        .exclude(pk__in=_appointments(person).values("pk"))
        .filter(address__in=_appointments(person).values("address"))
        .values_list("address", flat=True)
    }
    return sorted(theirs - others)


def erase(person: Person, erasure: Erasure) -> None:
    erasure.delete(
        GeocodedAddress.objects.filter(
            company=person.company, normalized__in=_only_their_addresses(person)
        )
    )
    erasure.delete(_signals(person))
    erasure.delete(_tasks(person))
    erasure.delete(_appointments(person))
    # Their status history cascades with the leads.
    erasure.delete(_leads(person))


def export(person: Person) -> dict[str, Rows]:
    return {
        "leads": rows(_leads(person)),
        "lead_history": rows(
            LeadStatusChange.objects.filter(company=person.company, lead__in=_leads(person))
        ),
        "appointments": rows(_appointments(person)),
        "tasks": rows(_tasks(person)),
        "key_signals": rows(_signals(person)),
    }
