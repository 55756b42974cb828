"""Recovery's KPI figures (metrics/recovery/ and the overview's ``recovery_rate``), one
aggregate query, registered with :func:`analysis.kpis.register_recovery` (docs/kpis.md).

The scope's calls are the KPIs' own (:func:`analysis.kpis.scoped_calls`: started in the
range, in the tenant's days; a person's are their calls, so a CSR's recoveries are those of
the missed calls they handled and a rep's those of their leads' and appointments' calls).
Each call has at most one recovery, so the LEFT JOIN to it multiplies nothing.

- ``missed_calls``: the calls not answered (the overview's ``missed``);
- ``texted``: recoveries with a recovery text sent or delivered;
- ``replied``: recoveries ended ``replied``, or with an inbound text from the contact since;
- ``recovered``: recoveries followed by a non-cancelled appointment for the contact created
  within the tenant's ``recovery_window_days`` of the missed call: the definition that
  sets a recovery's status ``recovered`` (:func:`messaging.recovery.bookings`), counted
  here at query time, so an appointment cancelled later stops counting;
- ``recovery_rate`` = recovered ÷ missed_calls;
- ``median_first_response_seconds``: missed call → its first recovery text handed to Twilio.
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

from analysis import kpis
from messaging.models import Message, MissedCallRecovery
from messaging.recovery import bookings
from otto.sql import Median

SENT = (Message.Status.SENT, Message.Status.DELIVERED)
R = "recoveries__"


def recovery_figures(scope: kpis.Scope) -> dict[str, Any]:
    recovery = OuterRef(f"{R}pk")
    texts = Message.objects.filter(
        recovery=recovery, direction=Message.Direction.OUTBOUND, status__in=SENT
    )
    first_sent = texts.order_by().values("recovery").annotate(at=Min("claimed_at")).values("at")
    reply = Message.objects.filter(
        company=scope.company,
        thread__contact=OuterRef(f"{R}contact"),
        direction=Message.Direction.INBOUND,
        created_at__gte=OuterRef(f"{R}started_at"),
    )
    booking = bookings(scope.company, OuterRef(f"{R}contact"), OuterRef(f"{R}started_at"))
    waited = ExpressionWrapper(
        Subquery(first_sent) - F(f"{R}started_at"), output_field=DurationField()
    )
    row = (
        kpis.scoped_calls(scope)
        .annotate(
            texted=Exists(texts),
            replied=Q(**{f"{R}status": MissedCallRecovery.Status.REPLIED}) | Exists(reply),
            recovered=Exists(booking),
            waited=Extract(waited, "epoch"),
        )
        .aggregate(
            missed_calls=Count("pk", filter=Q(answered=False)),
            texted_=Count(f"{R}pk", filter=Q(texted=True)),
            replied_=Count(f"{R}pk", filter=Q(replied=True)),
            recovered_=Count(f"{R}pk", filter=Q(recovered=True)),
            median_first_response_seconds=Median("waited"),
        )
    )
    missed, recovered = row["missed_calls"], row["recovered_"]
    return {
        "missed_calls": missed,
        "texted": row["texted_"],
        "replied": row["replied_"],
        "recovered": recovered,
        "recovery_rate": kpis.rate(recovered, missed),
        "median_first_response_seconds": row["median_first_response_seconds"],
    }
