"""Recovery's KPI figures (metrics/recovery/ and the overview's ``recovery_rate``), as
figures of the call (a call has at most one recovery), registered with
:func:`analysis.kpis.register_recovery` (docs/kpis.md), so the KPIs' daily rollup keeps
them beside ``booked`` (messaging.kpi_marks keeps it exact when a recovery, its texts, a
reply or a booking changes).

A person's recoveries are those of their calls (:func:`analysis.kpis.person_calls`): a
CSR's those of the missed calls they handled, a rep's those of their leads' and
appointments' calls. analysis adds ``missed_calls`` (calls not answered) and
``recovery_rate`` = recovered ÷ missed_calls. Per call:

- ``texted``: its recovery has a recovery text sent or delivered;
- ``replied``: its recovery ended ``replied``, or an inbound text from the contact came
  since the missed call;
- ``recovered``: its recovery is followed by a non-cancelled appointment for the contact
  created within the tenant's ``recovery_window_days`` of the missed call, the definition
  that sets a recovery's status ``recovered`` (:func:`messaging.recovery.bookings`), so an
  appointment cancelled later stops counting;
- :func:`response_seconds`: missed call → its recovery's first text handed to Twilio
  (``median_first_response_seconds`` is their median).
"""

from __future__ import annotations

from django.db.models import (
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Extract

from analysis import kpis
from messaging.models import Message, MissedCallRecovery
from messaging.recovery import bookings
from otto.models import Company

SENT = (Message.Status.SENT, Message.Status.DELIVERED)


def _recoveries() -> QuerySet[MissedCallRecovery]:
    """The recovery of the call at hand (an ``OuterRef`` over Call)."""
    return MissedCallRecovery.objects.filter(call=OuterRef("pk"))


def _texts() -> QuerySet[Message]:
    """The recovery texts sent or delivered of the recovery at hand."""
    return Message.objects.filter(
        recovery=OuterRef("pk"), direction=Message.Direction.OUTBOUND, status__in=SENT
    )


def conditions(company: Company) -> dict[str, Q]:
    """``texted``, ``replied`` and ``recovered``, each a condition over ``company``'s calls."""
    reply = Message.objects.filter(
        company=company,
        thread__contact=OuterRef("contact"),
        direction=Message.Direction.INBOUND,
        created_at__gte=OuterRef("started_at"),
    )
    booked = bookings(company, OuterRef("contact"), OuterRef("started_at"))
    replied = Q(status=MissedCallRecovery.Status.REPLIED) | Q(Exists(reply))
    return {
        "texted": Q(Exists(_recoveries().filter(Exists(_texts())))),
        "replied": Q(Exists(_recoveries().filter(replied))),
        "recovered": Q(Exists(_recoveries().filter(Exists(booked)))),
    }


def response_seconds(company: Company) -> Subquery:
    """Per call: seconds from the missed call to its recovery's first text (null: none)."""
    first = _texts().order_by().values("recovery").annotate(at=Min("claimed_at")).values("at")
    waited = ExpressionWrapper(Subquery(first) - F("started_at"), output_field=DurationField())
    seconds = _recoveries().annotate(seconds=Extract(waited, "epoch")).values("seconds")[:1]
    return Subquery(seconds, output_field=FloatField())


FIGURES = kpis.RecoveryFigures(
    conditions=conditions,
    response_seconds=response_seconds,
    # ``recovered`` reads the tenant's window: a change rebuilds the rollup.
    settings=("recovery_window_days",),
)
