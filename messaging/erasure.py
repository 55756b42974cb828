"""What messaging holds on a person, for :mod:`otto.erasure`: threads and messages with
their number, missed-call recoveries, follow-ups and AI calls, and the consent ledger's
events for the number.

An opt-out outlives the erasure (docs/governance.md): for each channel on which the
number stands opted out, one opt-out is written again under the number's keyed
pseudonym (:func:`otto.erasure.pseudonym`), which the consent selectors look up beside
the number itself. The ledger keeps no number in clear; a new opt-in from the number
(START) still wins, being newer. Opt-ins given before the erasure are not kept: an AI
call needs a fresh one.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from calls.erasure import person_calls
from messaging import selectors
from messaging.models import (
    AiCall,
    ConsentEvent,
    FollowUp,
    Message,
    MissedCallRecovery,
    Thread,
)
from otto.erasure import Erasure, Person, Rows, pseudonym, rows

KEPT_NOTE = "opt-out kept through a contact erasure"


def _threads(person: Person) -> QuerySet[Thread]:
    condition = Q(phone=person.phone)
    if person.contact is not None:
        condition |= Q(contact=person.contact)
    return Thread.objects.filter(company=person.company).filter(condition)


def _messages(person: Person) -> QuerySet[Message]:
    return Message.objects.filter(company=person.company).filter(
        Q(thread__in=_threads(person)) | Q(to_number=person.phone) | Q(from_number=person.phone)
    )


def _recoveries(person: Person) -> QuerySet[MissedCallRecovery]:
    condition = Q(call__in=person_calls(person))
    if person.contact is not None:
        condition |= Q(contact=person.contact)
    return MissedCallRecovery.objects.filter(company=person.company).filter(condition)


def _about(person: Person) -> Q:
    """A follow-up or AI call of the person: to their number, about their call, or theirs."""
    condition = Q(phone=person.phone) | Q(call__in=person_calls(person))
    if person.contact is not None:
        condition |= Q(contact=person.contact)
    return condition


def _followups(person: Person) -> QuerySet[FollowUp]:
    return FollowUp.objects.filter(company=person.company).filter(_about(person))


def _ai_calls(person: Person) -> QuerySet[AiCall]:
    return AiCall.objects.filter(company=person.company).filter(_about(person))


def _consent(person: Person) -> QuerySet[ConsentEvent]:
    return ConsentEvent.objects.filter(company=person.company, phone=person.phone)


def erase(person: Person, erasure: Erasure) -> None:
    opted_out = [
        channel
        for channel in ConsentEvent.Channel
        if selectors.is_opted_out(person.company, person.phone, channel)
    ]
    # The ledger is append-only for everyone else; an erasure is the one exception (a
    # queryset delete: ConsentEvent.delete() refuses).
    # AI calls first: each points at the consent event it relied on.
    erasure.delete(_ai_calls(person))
    erasure.delete(_consent(person))
    erasure.delete(_followups(person))
    erasure.delete(_messages(person))
    erasure.delete(_threads(person))
    erasure.delete(_recoveries(person))
    for channel in opted_out:
        ConsentEvent.objects.create(
            company=person.company,
            phone=pseudonym(person.phone),
            channel=channel,
            action=ConsentEvent.Action.OPT_OUT,
            source=ConsentEvent.Source.ADMIN,
            note=KEPT_NOTE,
        )
    erasure.count("messaging.ConsentEvent (opt-out kept by pseudonym)", len(opted_out))


def export(person: Person) -> dict[str, Rows]:
    return {
        "threads": rows(_threads(person)),
        "messages": rows(_messages(person)),
        "recoveries": rows(_recoveries(person)),
        "followups": rows(_followups(person)),
        "ai_calls": rows(_ai_calls(person)),
        "consent_events": rows(_consent(person)),
    }
