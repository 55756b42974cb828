"""Outcome tasks. Each takes ids and calls one service; each is safe to run twice: the
stage claims its call first, and geocoding writes through the tenant's cache."""

from __future__ import annotations

from appointments import geocoding, pipeline
from calls import sweeps
from otto.queues import Queue, enqueue, task


@task(unqueued=sweeps.mark_unqueued)
def apply_call(call_id: int) -> None:
    """Queue ``followups``: write one analysed call's outcomes."""
    pipeline.apply_call(int(call_id))


@task
def geocode_appointment(appointment_id: int) -> None:
    """Queue ``followups``: coordinates for one appointment (a provider call)."""
    geocoding.geocode_appointment(int(appointment_id))


@task
def retry_geocodes() -> None:
    """Schedule ``retry-geocodes``: geocode again the appointments whose address is due
    for a retry, and the pending ones whose task was lost."""
    for appointment_id in geocoding.due_for_geocoding():
        enqueue(Queue.FOLLOWUPS, geocode_appointment, appointment_id)
