"""Geocoding appointments through the sandbox's Google: after the stage commits, through the
tenant's cache, and never at the cost of the appointment when Google fails."""

from __future__ import annotations

import datetime

from django.core.cache import cache
from django.utils import timezone

from appointments import geocoding, pipeline
from appointments.models import Appointment, GeocodedAddress, Lead
from calls.models import Call
from tests.appointments.conftest import GEOCODE, analysed_call


def soon() -> datetime.datetime:
    """A call made yesterday: its "tomorrow at 9 am" appointment is still ahead, as the
    retry schedule only looks at appointments still to come."""
    return timezone.now() - datetime.timedelta(days=1) + datetime.timedelta(hours=1)


def booked_appointment(company) -> Appointment:
    call = analysed_call(company, "booked", started_at=soon())
    assert pipeline.apply_call(call.pk) == Call.Stage.DONE
    return Appointment.objects.get(call=call)


def test_a_geocode_500_keeps_the_appointment_with_the_reason_and_retries_later(
    acme, sandbox, run_tasks
):
    # Google answers 500 to every retry the client makes within its timeout
    sandbox.inject("google_maps.geocode", "500", count=50)
    call = analysed_call(acme, "booked", started_at=soon())

    with run_tasks() as worker:
        assert pipeline.apply_call(call.pk) == Call.Stage.DONE

    assert worker.failed == []
    appointment = Appointment.objects.get(call=call)
    assert (appointment.latitude, appointment.longitude) == (None, None)
    assert appointment.geocode_status == "failed" and "google_maps" in appointment.geocode_error
    # the lead and the call did not wait for Google
    assert Lead.objects.get(contact=call.contact).status == "qualified_booked"
    cached = GeocodedAddress.objects.get(company=acme)
    assert cached.attempts == 1 and cached.retry_at > timezone.now()

    # once the backoff is over and Google is back, the retry schedule finds it
    sandbox.reset()
    later = cached.retry_at + datetime.timedelta(seconds=1)
    assert geocoding.due_for_geocoding(now=timezone.now()) == []
    assert geocoding.due_for_geocoding(now=later) == [appointment.pk]
    GeocodedAddress.objects.filter(pk=cached.pk).update(retry_at=timezone.now())
    assert geocoding.geocode_appointment(appointment.pk) == "ok"
    appointment.refresh_from_db()
    assert appointment.latitude is not None and appointment.geocode_error == ""


def test_a_geocode_timeout_keeps_the_appointment_with_the_reason(acme, sandbox):
    sandbox.inject("google_maps.geocode", "timeout", count=1, delay_seconds=4)
    appointment = booked_appointment(acme)

    assert geocoding.geocode_appointment(appointment.pk) == "failed"

    appointment.refresh_from_db()
    assert appointment.latitude is None and "timed out" in appointment.geocode_error
    assert appointment.status == "scheduled"


def test_a_failing_address_is_given_up_after_the_bounded_attempts(acme, sandbox, settings):
    settings.PROVIDER_TIMEOUTS = {**settings.PROVIDER_TIMEOUTS, "google_maps": 1.0}
    appointment = booked_appointment(acme)
    for attempt in range(1, geocoding.MAX_ATTEMPTS + 1):
        sandbox.inject("google_maps.geocode", "500", count=50)
        GeocodedAddress.objects.filter(company=acme).update(retry_at=timezone.now())
        assert geocoding.geocode_appointment(appointment.pk) == "failed"
        assert GeocodedAddress.objects.get(company=acme).attempts == attempt

    cached = GeocodedAddress.objects.get(company=acme)
    assert cached.retry_at is None and cached.error.startswith("gave up after 4")
    assert geocoding.due_for_geocoding(now=timezone.now() + datetime.timedelta(hours=6)) == []


def test_a_refused_key_is_not_retried(acme, sandbox, settings):
    settings.GOOGLE_MAPS_API_KEY = "AIzaNotTheSandboxKey"
    appointment = booked_appointment(acme)

    assert geocoding.geocode_appointment(appointment.pk) == "failed"

    cached = GeocodedAddress.objects.get(company=acme)
    assert "REQUEST_DENIED" in cached.error and cached.retry_at is None


def test_the_second_appointment_at_an_address_is_served_from_the_tenants_cache(
    acme, globex, sandbox, geocode_requests
):
    first = booked_appointment(acme)
    assert geocoding.geocode_appointment(first.pk) == "ok"
    cache.clear()  # not the client's own cache: the tenant's table answers
    second = booked_appointment(acme)

    assert geocoding.geocode_appointment(second.pk) == "ok"

    assert geocode_requests() == ["1420 Maple Street"]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (second.latitude, second.longitude) == (first.latitude, first.longitude)
    # another tenant's appointment at the same address asks for itself
    other = booked_appointment(globex)
    cache.clear()
    assert geocoding.geocode_appointment(other.pk) == "ok"
    assert len(geocode_requests()) == 2
    assert GeocodedAddress.objects.filter(normalized="1420 maple street").count() == 2


def test_an_approximate_match_is_ambiguous_and_gets_no_coordinates(acme, sandbox):
    appointment = booked_appointment(acme)
    Appointment.objects.filter(pk=appointment.pk).update(address="Maple Street, Somerville")

    assert geocoding.geocode_appointment(appointment.pk) == "ambiguous"

    appointment.refresh_from_db()
    assert appointment.latitude is None
    assert appointment.geocode_error.startswith("only an approximate match")


def test_an_appointment_without_an_address_says_so(acme, sandbox, geocode_requests):
    appointment = booked_appointment(acme)
    Appointment.objects.filter(pk=appointment.pk).update(address="")

    assert geocoding.geocode_appointment(appointment.pk) == "no_address"
    assert geocode_requests() == []


def test_a_lost_geocode_task_is_enqueued_by_the_schedule(acme, sandbox, run_tasks):
    appointment = booked_appointment(acme)
    old = timezone.now() - geocoding.PENDING_GRACE - datetime.timedelta(seconds=1)
    Appointment.objects.filter(pk=appointment.pk).update(updated_at=old)

    with run_tasks() as worker:
        worker.run("appointments.tasks.retry_geocodes")

    assert worker.count(GEOCODE) == 1
    appointment.refresh_from_db()
    assert appointment.geocode_status == "ok"
