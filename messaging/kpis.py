"""Recovery's KPI figures (metrics/recovery/ and the overview's ``recovery_rate``), one
aggregate query, registered with :func:`analysis.kpis.register_recovery` (docs/kpis.md).

The recoveries counted are those of the scope's calls, the KPIs' own: started in the range,
in the tenant's days; a person's are their calls (:func:`analysis.kpis.person_calls`), so a
CSR's recoveries are those of the missed calls they handled and a rep's those of their
leads' and appointments' calls. Each call has at most one recovery.

analysis.kpis adds ``missed_calls`` (the overview's ``missed``: calls not answered),
``recovered`` and ``recovery_rate`` = recovered ÷ missed_calls, call figures (the daily
rollup keeps them). Here:

- ``texted``: recoveries with a recovery text sent or delivered;
- ``replied``: recoveries ended ``replied``, or with an inbound text from the contact since;
- ``median_first_response_seconds``: missed call → its first recovery text handed to Twilio;
- :func:`recovered_call`, the condition behind ``recovered``: the call's recovery is
  followed by a non-cancelled appointment for the contact created within the tenant's
  ``recovery_window_days`` of the missed call, the definition that sets a recovery's status
  ``recovered`` (:func:`messaging.recovery.bookings`), evaluated when the call's day is
  counted, so an appointment cancelled later stops counting (its save marks the day).
"""

from __future__ import annotations

from typing import Any

from django.db.models import (
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Min,
    OuterRef,
    Q,
    Subquery,
)
from django.db.models.functions import Extract

from analysis import kpis, rollup
from appointments.models import Appointment
from calls.models import Call
from messaging.models import Message, MissedCallRecovery
from messaging.recovery import bookings
from otto.models import Company
from otto.sql import Median

SENT = (Message.Status.SENT, Message.Status.DELIVERED)


def recovery_figures(scope: kpis.Scope) -> dict[str, Any]:
    """One aggregate over the recoveries of the scope's calls (a fifth of them: only a
    missed call or a voicemail has one), not over every call of the range. ``recovered``
    is a call figure (:func:`recovered_call`), kept in the KPIs' daily rollup."""
    start, end = scope.bounds
    # The call's company too, so that its calls are read by (company, started_at).
    recoveries = MissedCallRecovery.objects.filter(
        company=scope.company,
        call__company=scope.company,
        call__started_at__gte=start,
        call__started_at__lt=end,
    )
    if scope.person is not None:
        calls = Call.objects.filter(
            company=scope.company, started_at__gte=start, started_at__lt=end
        )
        mine = kpis.person_calls(calls, scope.person, scope.role)
        recoveries = recoveries.filter(call__in=mine.values("pk"))
    texts = Message.objects.filter(
        recovery=OuterRef("pk"), direction=Message.Direction.OUTBOUND, status__in=SENT
    )
    first_sent = texts.order_by().values("recovery").annotate(at=Min("claimed_at")).values("at")
    reply = Message.objects.filter(
        company=scope.company,
        thread__contact=OuterRef("contact"),
        direction=Message.Direction.INBOUND,
        created_at__gte=OuterRef("started_at"),
    )
    waited = ExpressionWrapper(Subquery(first_sent) - F("started_at"), output_field=DurationField())
    return recoveries.aggregate(
        texted=Count("pk", filter=Q(Exists(texts))),
        replied=Count("pk", filter=Q(status=MissedCallRecovery.Status.REPLIED) | Q(Exists(reply))),
        median_first_response_seconds=Median(Extract(waited, "epoch")),
    )


def recovered_call(company: Company) -> Q:
    """A call of ``company`` whose recovery a booking recovered (:func:`bookings`): a
    figure of every call, so the KPIs' daily rollup keeps it (``recovered``), the same
    count as ``recovery_figures``' over the recoveries (one recovery per call)."""
    booked = bookings(company, OuterRef("contact"), OuterRef("started_at"))
    return Q(Exists(MissedCallRecovery.objects.filter(call=OuterRef("pk")).filter(Exists(booked))))


# The Company fields ``recovered_call`` reads: a change rebuilds the rollup.
RECOVERED_SETTINGS = ("recovery_window_days",)


def mark_recovery(
    sender: Any, instance: MissedCallRecovery, created: bool = True, **_: Any
) -> None:
    """A recovery made or removed (not one moving along its steps) changes its call's
    ``recovered`` figure."""
    if created:
        rollup.mark_calls([instance.call_id])


def mark_contact_recoveries(sender: Any, instance: Appointment, **_: Any) -> None:
    """An appointment made, cancelled or removed may recover the contact's recoveries (or
    stop doing so): their calls' days are marked."""
    if instance.contact_id is not None:
        rollup.mark_calls(Call.objects.filter(recoveries__contact_id=instance.contact_id))
