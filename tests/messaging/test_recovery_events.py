"""What ends a recovery at the event, not only when its next step comes: a booking within
the tenant's window recovers it, the missed call's analysis saying spam stops it, and a
later answered call stops it when that call is ingested."""

from __future__ import annotations

import datetime

import time_machine

from analysis.models import CallAnalysis
from appointments import pipeline as appointments_pipeline
from appointments.models import Appointment
from calls.models import Call
from messaging import recovery
from messaging.models import MissedCallRecovery
from tests.api.factories import AppointmentFactory, CallFactory
from tests.calls.conftest import ACME_KEY, make_calls, sandbox_call
from tests.integrations.fixtures import load, post_callrail
from tests.messaging import test_recovery
from tests.messaging.test_recovery import HOUR, T0, rec, sent_bodies, start
from tests.messaging.test_recovery_kpis import RANGE, get, recoveries  # noqa: F401

# The clock-and-worker fixture of the recovery tests.
at = test_recovery.at
Status = MissedCallRecovery.Status
DAY = datetime.timedelta(days=1)


def book(row: MissedCallRecovery, when: datetime.datetime, **fields) -> Appointment:
    with time_machine.travel(when, tick=False):
        return AppointmentFactory(company=row.company, contact=row.contact, **fields)


# --- recovered --------------------------------------------------------------------------


def test_a_booking_within_the_window_recovers_it_and_no_nudge_follows(acme_sms, twilio, at):
    row = start(acme_sms, at=at)

    book(row, T0 + 3 * HOUR)

    assert rec(row).status == Status.RECOVERED
    assert (row.stopped_reason, row.next_action_at) == (recovery.BOOKED, None)
    with at(T0 + 10 * HOUR):
        pass
    assert len(sent_bodies(twilio)) == 1  # the text-back only


def test_a_booking_recovers_an_ended_recovery_too(acme_sms, twilio, at):
    row = start(acme_sms, at=at)
    MissedCallRecovery.objects.filter(pk=row.pk).update(status=Status.REPLIED)

    book(row, T0 + 2 * DAY)

    assert rec(row).status == Status.RECOVERED


def test_the_window_is_the_tenants(acme_sms, twilio, at):
    row = start(acme_sms, at=at)

    book(row, T0 + 8 * DAY)  # the default window is 7 days
    assert rec(row).status == Status.ACTIVE
    book(row, T0 + 8 * DAY, status=Appointment.Status.CANCELLED)
    acme_sms.recovery_window_days = 10
    acme_sms.save(update_fields=["recovery_window_days"])
    assert rec(row).status == Status.ACTIVE  # a cancelled booking recovers nothing
    book(row, T0 + 9 * DAY)

    assert rec(row).status == Status.RECOVERED


def test_another_contacts_booking_recovers_nothing(acme_sms, twilio, at):
    row = start(acme_sms, at=at)
    other = start(acme_sms, at=at, phone="+12125550143")

    book(other, T0 + HOUR)

    assert (rec(row).status, rec(other).status) == (Status.ACTIVE, Status.RECOVERED)


def test_the_kpi_counts_recovered_with_the_tenants_window(acme_manager, recoveries):  # noqa: F811
    assert get(acme_manager, "recovery", **RANGE)["recovered"] == 2  # m2's came at +8 d
    company = acme_manager.company
    company.recovery_window_days = 10
    company.save(update_fields=["recovery_window_days"])

    assert get(acme_manager, "recovery", **RANGE)["recovered"] == 3


# --- spam -------------------------------------------------------------------------------


def analyse(call: Call, intent: str, **fields) -> CallAnalysis:
    return CallAnalysis.objects.create(
        company=call.company,
        call=call,
        version=1,
        is_current=True,
        analyzer="openai",
        prompt_version="v1",
        intent=intent,
        lead_quality="cold",
        booking_status="not_booked",
        **fields,
    )


def apply(call: Call, when: datetime.datetime) -> None:
    """The applied stage, as after analysis: its listeners hear of it."""
    Call.objects.filter(pk=call.pk).update(stage=Call.Stage.ANALYZED, next_attempt_at=None)
    with time_machine.travel(when, tick=False):
        assert appointments_pipeline.apply_call(call.pk) is not None


def test_a_spam_analysis_after_the_text_back_stops_it_without_nudges(acme_sms, twilio, at):
    row = start(acme_sms, at=at)
    analyse(row.call, "spam")

    apply(row.call, T0 + HOUR)

    assert (rec(row).status, row.stopped_reason) == (Status.STOPPED, recovery.SPAM)
    with at(T0 + 2 * HOUR):
        pass
    assert len(sent_bodies(twilio)) == 1


def test_an_analysis_that_is_not_spam_changes_nothing(acme_sms, twilio, at):
    row = start(acme_sms, at=at)
    analyse(row.call, "inquiry")

    apply(row.call, T0 + HOUR)

    assert rec(row).status == Status.ACTIVE
    with at(T0 + 2 * HOUR):
        pass
    assert len(sent_bodies(twilio)) == 2  # the +2 h nudge


def test_a_person_correcting_the_intent_to_spam_counts(acme_sms, twilio, at):
    row = start(acme_sms, at=at)
    analyse(row.call, "inquiry", overrides={"intent": "spam"})

    apply(row.call, T0 + HOUR)

    assert rec(row).status == Status.STOPPED


def test_the_step_checks_spam_too(acme_sms, twilio, at):
    row = start(acme_sms, at=at)
    analyse(row.call, "spam")  # written, but not applied yet

    with at(T0 + 2 * HOUR):
        pass

    assert (rec(row).status, row.stopped_reason) == (Status.STOPPED, recovery.SPAM)
    assert len(sent_bodies(twilio)) == 1


# --- a later answered call --------------------------------------------------------------


def test_a_later_answered_call_stops_it_when_ingested(
    acme_callrail,
    acme_sms,
    twilio,
    client,
    at,
    run_tasks,  # noqa: F811
):
    made = make_calls(twilio, call_id="CAL" + "a1" * 16, legacy_id=766970532, scenario="booked")[0]
    made = sandbox_call(twilio, made["id"])
    answered_at = datetime.datetime.fromisoformat(made["start_time"])
    row = start(acme_sms, answered_at - 3 * HOUR, at=at, phone=made["customer_phone_number"])
    other = start(acme_sms, answered_at - 3 * HOUR, at=at, phone="+12125550143")

    with time_machine.travel(answered_at + HOUR, tick=True), run_tasks():
        response = post_callrail(
            client, "call.completed", load("callrail", "call.completed.answered"), ACME_KEY
        )

    assert response.status_code == 200, response.content
    assert Call.objects.get(external_id=made["id"]).answered
    # at once, not when the next step comes; the other contact's goes on
    assert (rec(row).status, row.stopped_reason) == (Status.STOPPED, recovery.ANSWERED)
    assert rec(other).status == Status.ACTIVE


def test_an_answered_call_before_the_recovery_started_stops_nothing(acme_sms, twilio, at):
    row = start(acme_sms, at=at)
    earlier = CallFactory(
        company=acme_sms,
        contact=row.contact,
        customer_number=row.contact.phone,
        started_at=T0 - HOUR,
        answered=True,
    )

    assert recovery.on_answered_call(earlier) == 0
    assert rec(row).status == Status.ACTIVE
