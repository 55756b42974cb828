"""Coordinates for appointments: Google's geocoder behind a per-tenant cache.

Geocoding is a provider call, so it never runs inside the ``applied`` stage's transaction:
the stage enqueues :func:`geocode_appointment` once it commits, and a geocoding outage
holds up neither the lead nor the tasks (docs/outcomes.md "Geocoding").

- The cache is :class:`~appointments.models.GeocodedAddress`, one row per company and
  normalised address (``normalise_address``), written with ``update_or_create`` on that
  unique key: a second appointment at the same address costs no request.
- ``ok`` gives the appointment its coordinates. ``ambiguous`` (Google placed the address
  only approximately) and ``not_found`` leave them null with the reason; so does
  ``failed`` (a 5xx, a timeout, a refused key).
- A transient failure is retried by the ``retry-geocodes`` schedule, at most
  :data:`MAX_ATTEMPTS` lookups per address with a growing delay; a permanent one (a
  refused key, a malformed answer) is not. Either way the reason stays on the appointment.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.db.models import Q
from django.utils import timezone

from appointments.models import Appointment, GeocodedAddress
from integrations.errors import ProviderError
from integrations.google_maps.client import GeocodingClient, normalise_address

logger = logging.getLogger(__name__)

Status = GeocodedAddress.Status
# Lookups of one failing address before it is left failed for good.
MAX_ATTEMPTS = 4
# The n-th retry waits RETRY_BASE * 4**(n-1): 5 minutes, 20 minutes, 80 minutes.
RETRY_BASE = datetime.timedelta(minutes=5)
# A pending appointment whose geocode task was lost is enqueued again after this long.
PENDING_GRACE = datetime.timedelta(minutes=5)
RETRY_BATCH = 200


def geocode_appointment(appointment_id: int) -> str | None:
    """Give one appointment its coordinates (or the reason it has none); its geocode
    status afterwards, or None when it no longer exists."""
    appointment = Appointment.objects.filter(pk=appointment_id).first()
    if appointment is None:
        return None
    address = appointment.address
    normalized = normalise_address(address)[:300]
    if not normalized:
        return _record(appointment, address, Appointment.GeocodeStatus.NO_ADDRESS, "no address")
    cached = GeocodedAddress.objects.filter(
        company_id=appointment.company_id, normalized=normalized
    ).first()
    if cached is None or _retry_due(cached):
        cached = _look_up(appointment.company_id, normalized, address, previous=cached)
    if cached.status == Status.OK:
        return _record(appointment, address, cached.status, "", cached.latitude, cached.longitude)
    return _record(appointment, address, cached.status, cached.error)


def _retry_due(row: GeocodedAddress) -> bool:
    return (
        row.status == Status.FAILED and row.retry_at is not None and row.retry_at <= timezone.now()
    )


def _look_up(
    company_id: int, normalized: str, address: str, *, previous: GeocodedAddress | None
) -> GeocodedAddress:
    """Ask Google (no transaction open) and store its answer in the tenant's cache."""
    values: dict[str, Any] = {
        "latitude": None,
        "longitude": None,
        "formatted_address": "",
        "error": "",
        "attempts": 0,
        "retry_at": None,
    }
    try:
        result = GeocodingClient.from_settings().geocode(address)
    except ProviderError as exc:
        attempts = (previous.attempts if previous else 0) + 1
        give_up = exc.permanent or attempts >= MAX_ATTEMPTS
        error = str(exc) if not give_up or exc.permanent else f"gave up after {attempts}: {exc}"
        values.update(status=Status.FAILED, error=error[:255], attempts=attempts)
        if not give_up:
            values["retry_at"] = timezone.now() + RETRY_BASE * 4 ** (attempts - 1)
        logger.warning("geocoding failed for company %s: %s", company_id, exc)
    else:
        if result is None:
            values.update(status=Status.NOT_FOUND, error="Google found no such address")
        else:
            values.update(
                latitude=round(result.lat, 6),
                longitude=round(result.lng, 6),
                formatted_address=result.formatted_address[:300],
            )
            if result.precision == "APPROXIMATE":
                # A town or a street, not a door: a rep cannot drive to it.
                values.update(
                    status=Status.AMBIGUOUS,
                    error=f"only an approximate match: {result.formatted_address}"[:255],
                )
            else:
                values["status"] = Status.OK
    row, _ = GeocodedAddress.objects.update_or_create(
        company_id=company_id, normalized=normalized, defaults=values
    )
    return row


def _record(
    appointment: Appointment,
    address: str,
    status: str,
    error: str,
    latitude: Any = None,
    longitude: Any = None,
) -> str:
    # Only while the address is the one geocoded: a changed address has its own task.
    Appointment.objects.filter(pk=appointment.pk, address=address).update(
        latitude=latitude,
        longitude=longitude,
        geocode_status=status,
        geocode_error=error[:255],
        updated_at=timezone.now(),
    )
    return status


def due_for_geocoding(now: datetime.datetime | None = None) -> list[int]:
    """Appointments to geocode again: failed ones whose address is due for a retry, and
    pending ones whose task was lost. Only appointments still ahead (or of the last day)."""
    now = now or timezone.now()
    candidates = (
        Appointment.objects.filter(scheduled_start__gte=now - datetime.timedelta(days=1))
        .filter(
            Q(geocode_status=Appointment.GeocodeStatus.FAILED)
            | Q(
                geocode_status=Appointment.GeocodeStatus.PENDING,
                updated_at__lte=now - PENDING_GRACE,
            )
        )
        .exclude(address="")
        .order_by("scheduled_start", "pk")
        .values_list("pk", "company_id", "address", "geocode_status")[:RETRY_BATCH]
    )
    due_rows = {
        (company_id, normalized)
        for company_id, normalized in GeocodedAddress.objects.filter(
            status=Status.FAILED, retry_at__lte=now
        ).values_list("company_id", "normalized")
    }
    return [
        pk
        for pk, company_id, address, status in candidates
        if status == Appointment.GeocodeStatus.PENDING
        or (company_id, normalise_address(address)[:300]) in due_rows
    ]
