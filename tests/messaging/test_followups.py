"""Follow-ups of qualified unbooked calls: drafted once when the outcomes are applied, timed
into the next business window, sent through the gate and the sandbox's Twilio once due and
approved (or at once approved by the tenant's auto-send), and cancelled by a reply or a
booking."""

from __future__ import annotations

import datetime
import threading
from urllib.parse import parse_qsl

import pytest
import time_machine
from django.db import connection

from analysis.models import CallAnalysis
from appointments import pipeline
from appointments.models import Appointment
from calls.models import Call
from messaging import followups, services, tasks
from messaging.models import ConsentEvent, FollowUp, Message, MissedCallRecovery
from otto.models import Contact
from tests.analysis.conftest import FRIDAY_1640
from tests.api.factories import CallFactory
from tests.appointments.conftest import analysed_call
from tests.messaging.conftest import CUSTOMER, text_in

Status = FollowUp.Status
MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)
# Tuesday 10:00 in New York (EDT): the customer's and the tenant's zone.
TUE_10 = datetime.datetime(2026, 3, 10, 14, 0, tzinfo=datetime.UTC)
PRICE = [{"category": "price", "quote": "That's a lot", "utterance": 3, "resolved": False}]


def sent_bodies(sandbox) -> list[str]:
    return [dict(parse_qsl(r["body"]))["Body"] for r in sandbox.recorded("twilio.messages.create")]


def analysed(
    company,
    *,
    at: datetime.datetime = TUE_10,
    qualified: bool = True,
    booking: str = "not_booked",
    objections: list | None = None,
    appointment: dict | None = None,
    phone: str = CUSTOMER,
) -> Call:
    """A 5-minute call at ``at`` waiting at ``analyzed`` with its current analysis."""
    contact, _ = Contact.objects.get_or_create(company=company, phone=phone)
    call = CallFactory(
        company=company,
        contact=contact,
        customer_number=phone,
        started_at=at,
        duration_seconds=300,
        stage=Call.Stage.ANALYZED,
    )
    CallAnalysis.objects.create(
        company=company,
        call=call,
        version=1,
        analyzer="openai",
        prompt_version="test",
        qualified=qualified,
        lead_quality="warm" if qualified else "unqualified",
        booking_status=booking,
        objections=PRICE if objections is None else objections,
        appointment=appointment,
        customer_name="Marcus Bell",
    )
    return call


def apply(call: Call, now: datetime.datetime | None = None) -> str | None:
    """The applied stage as its worker runs it, a few minutes after the call."""
    with time_machine.travel(now or call.started_at + 10 * MINUTE, tick=False):
        return pipeline.apply_call(call.pk)


@pytest.fixture
def tick(run_tasks):
    """``tick(when)``: the minute schedules run at ``when``, and every task they push runs
    inline, as the followups workers would."""

    def run(when: datetime.datetime) -> None:
        with time_machine.travel(when, tick=False), run_tasks():
            tasks.dispatch_due_followups()
            tasks.dispatch_due_messages()

    return run


# --- drafting --------------------------------------------------------------------------------


def test_the_price_objection_scenario_gets_the_analyzers_draft_about_the_price(acme_sms, sandbox):
    with time_machine.travel(FRIDAY_1640 + 10 * MINUTE, tick=False):
        call = analysed_call(acme_sms, "price_objection")
        assert pipeline.apply_call(call.pk) == Call.Stage.DONE

    # the analyzer's suggested text, naming the sender and how to opt out
    followup = FollowUp.objects.get(call=call)
    assert (followup.status, followup.channel, followup.drafted_by) == (
        Status.DRAFT,
        FollowUp.Channel.SMS,
        FollowUp.DraftedBy.ANALYZER,
    )
    assert followup.body.startswith("Acme Heating: Thanks for calling us today")
    assert "the price" in followup.body and followup.body.endswith("Reply STOP to opt out.")
    assert followup.phone == call.contact.phone
    call.refresh_from_db()
    assert call.stage_reason == "follow-up drafted"


@pytest.mark.parametrize(
    "analysis",
    [
        {"booking": "booked"},
        {"qualified": False},
        {"booking": "service_not_offered"},
    ],
    ids=["booked", "unqualified", "service-not-offered"],
)
def test_no_follow_up_for_a_call_that_booked_or_was_not_qualified(acme_sms, analysis):
    call = analysed(acme_sms, **analysis)

    assert apply(call) == Call.Stage.DONE

    assert not FollowUp.objects.exists()
    call.refresh_from_db()
    assert call.stage_reason == "no follow-ups needed"


def test_the_tenants_template_is_filled_in(acme_sms):
    acme_sms.followup_text = "{name}, {company} again {about} {objection}?"
    acme_sms.save(update_fields=["followup_text"])

    apply(analysed(acme_sms))

    assert FollowUp.objects.get().body == "Marcus, Acme Heating again {about} the price?"


def test_without_an_objection_or_a_name_the_default_text_still_reads_well(acme_sms):
    body, by = followups.draft_text(acme_sms, {"customer_name": "", "objections": []})

    assert body.startswith("Hi there, this is Acme Heating following up on your call.")
    assert "{" not in body and by == FollowUp.DraftedBy.TEMPLATE


def test_a_suggested_text_in_the_analysis_is_used_naming_the_sender_and_the_opt_out(acme_sms):
    fields = {"followup_text": " Hi Marcus, the quote is in your inbox. ", "objections": PRICE}

    assert followups.draft_text(acme_sms, fields) == (
        "Acme Heating: Hi Marcus, the quote is in your inbox. Reply STOP to opt out.",
        FollowUp.DraftedBy.ANALYZER,
    )
    # a text that already names the company and STOP is used as it is
    complete = "Hi Marcus, Acme Heating here: the quote is in your inbox. Text STOP to opt out."
    assert followups.draft_text(acme_sms, {"followup_text": complete})[0] == complete


def test_a_reapplied_call_keeps_its_one_follow_up(acme_sms):
    call = analysed(acme_sms)
    apply(call)
    first = FollowUp.objects.get()

    with time_machine.travel(TUE_10 + 20 * MINUTE, tick=False):
        pipeline.reapply_outcomes(Call.objects.get(pk=call.pk), actor=None)
        assert pipeline.apply_call(call.pk) == Call.Stage.DONE

    assert list(FollowUp.objects.values_list("pk", "body")) == [(first.pk, first.body)]


def test_a_reanalysis_that_says_booked_cancels_the_calls_draft(acme_sms):
    call = analysed(acme_sms)
    apply(call)
    CallAnalysis.objects.filter(call=call).update(booking_status="booked")

    with time_machine.travel(TUE_10 + 20 * MINUTE, tick=False):
        pipeline.reapply_outcomes(Call.objects.get(pk=call.pk), actor=None)
        pipeline.apply_call(call.pk)

    followup = FollowUp.objects.get()
    assert followup.status == Status.CANCELLED
    assert followup.status_reason == f"the contact booked (call {call.pk})"


def test_tenants_with_follow_ups_off_and_old_calls_get_none(acme_sms):
    old = analysed(acme_sms, at=TUE_10 - 8 * 24 * HOUR)
    apply(old, now=TUE_10)
    assert not FollowUp.objects.exists()

    acme_sms.followup_enabled = False
    acme_sms.save(update_fields=["followup_enabled"])
    apply(analysed(acme_sms))
    assert not FollowUp.objects.exists()


def test_a_voicemail_being_recovered_gets_no_second_follow_up(acme_sms):
    # given a qualified voicemail that did not book, whose text-back already went
    voicemail = analysed(acme_sms)
    MissedCallRecovery.objects.create(
        company=acme_sms,
        call=voicemail,
        contact=voicemail.contact,
        started_at=voicemail.started_at,
        cooldown_until=voicemail.started_at + 24 * HOUR,
    )

    # when its outcomes are applied, no follow-up is drafted beside the recovery
    assert apply(voicemail) == Call.Stage.DONE
    assert not FollowUp.objects.exists()

    # while a later answered call of the same contact that did not book gets one
    apply(analysed(acme_sms, at=TUE_10 + 2 * HOUR))
    assert FollowUp.objects.get().call.started_at == TUE_10 + 2 * HOUR


# --- when ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("called", "expected"),
    [
        # Tuesday 10:00 EDT: an hour after the call ended, still open
        (TUE_10, TUE_10 + 65 * MINUTE),
        # Tuesday 17:30 EDT: 18:35 is after closing; Wednesday's opening at 08:00
        (
            datetime.datetime(2026, 3, 10, 21, 30, tzinfo=datetime.UTC),
            datetime.datetime(2026, 3, 11, 12, 0, tzinfo=datetime.UTC),
        ),
        # Saturday 12:30 EDT: Saturday closes at 13:00, Sunday is closed: Monday 08:00
        (
            datetime.datetime(2026, 3, 14, 16, 30, tzinfo=datetime.UTC),
            datetime.datetime(2026, 3, 16, 12, 0, tzinfo=datetime.UTC),
        ),
    ],
    ids=["daytime", "evening", "weekend"],
)
def test_the_follow_up_is_timed_into_the_next_business_window(acme_sms, called, expected):
    apply(analysed(acme_sms, at=called))

    assert FollowUp.objects.get().scheduled_for == expected


def test_business_hours_opening_before_the_quiet_hours_end_wait_for_the_gate(acme_sms):
    acme_sms.business_hours = {**acme_sms.business_hours, "mon": ["06:00", "18:00"]}
    acme_sms.save(update_fields=["business_hours"])

    apply(analysed(acme_sms, at=datetime.datetime(2026, 3, 14, 16, 30, tzinfo=datetime.UTC)))

    # Monday opens at 06:00, but the recipient's window opens at 08:00 EDT
    assert FollowUp.objects.get().scheduled_for == datetime.datetime(
        2026, 3, 16, 12, 0, tzinfo=datetime.UTC
    )


# --- sending -------------------------------------------------------------------------------


def test_an_approved_follow_up_is_sent_once_at_its_time(acme_sms, twilio, tick, acme_csr):
    apply(analysed(acme_sms))
    followup = FollowUp.objects.get()
    with time_machine.travel(TUE_10 + 15 * MINUTE, tick=False):
        response = acme_csr.client().post(f"/api/v1/followups/{followup.pk}/approve/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == Status.APPROVED

    tick(followup.scheduled_for - MINUTE)
    assert sent_bodies(twilio) == []
    tick(followup.scheduled_for)
    tick(followup.scheduled_for + MINUTE)

    assert sent_bodies(twilio) == [followup.body]
    followup.refresh_from_db()
    assert followup.status == Status.SENT and followup.approved_by == acme_csr.membership.user
    assert followup.message.kind == Message.Kind.FOLLOWUP
    assert followup.message.to_number == CUSTOMER


def test_a_draft_nobody_approved_is_never_sent(acme_sms, twilio, tick):
    apply(analysed(acme_sms))
    followup = FollowUp.objects.get()

    tick(followup.scheduled_for + 2 * HOUR)

    assert sent_bodies(twilio) == [] and FollowUp.objects.get().status == Status.DRAFT


def test_auto_send_tenants_send_without_approval(acme_sms, twilio, tick):
    acme_sms.followup_auto_send = True
    acme_sms.save(update_fields=["followup_auto_send"])
    apply(analysed(acme_sms))
    followup = FollowUp.objects.get()
    assert followup.status == Status.SCHEDULED and followup.approved_by is None

    tick(followup.scheduled_for)

    assert sent_bodies(twilio) == [followup.body]
    assert FollowUp.objects.get().status == Status.SENT


def test_an_opted_out_contact_is_blocked_with_the_reason(acme_sms, twilio, tick):
    acme_sms.followup_auto_send = True
    acme_sms.save(update_fields=["followup_auto_send"])
    apply(analysed(acme_sms))
    services.record_consent(
        acme_sms,
        phone=CUSTOMER,
        action=ConsentEvent.Action.OPT_OUT,
        source=ConsentEvent.Source.KEYWORD,
    )
    followup = FollowUp.objects.get()

    tick(followup.scheduled_for)

    followup.refresh_from_db()
    assert (followup.status, followup.status_reason) == (Status.BLOCKED, "recipient_opted_out")
    assert followup.message.status == Message.Status.BLOCKED
    assert sent_bodies(twilio) == []


def test_quiet_hours_defer_the_text_to_the_gates_time(acme_sms, twilio, tick):
    apply(analysed(acme_sms))
    followup = FollowUp.objects.get()
    late = datetime.datetime(2026, 3, 11, 2, 0, tzinfo=datetime.UTC)  # 22:00 EDT
    morning = datetime.datetime(2026, 3, 11, 12, 0, tzinfo=datetime.UTC)  # 08:00 EDT
    followups.edit(acme_sms, followup, scheduled_for=late)
    followups.approve(acme_sms, followup, actor=None, now=TUE_10)

    tick(late)

    followup.refresh_from_db()
    assert (followup.status, followup.scheduled_for) == (Status.SCHEDULED, morning)
    assert followup.message.status == Message.Status.SCHEDULED
    assert sent_bodies(twilio) == []
    tick(morning)
    assert sent_bodies(twilio) == [followup.body]
    assert FollowUp.objects.get().status == Status.SENT


def test_two_runners_send_one_message(transactional_db, acme_sms, twilio, worker):
    acme_sms.followup_auto_send = True
    acme_sms.save(update_fields=["followup_auto_send"])
    apply(analysed(acme_sms))
    followup = FollowUp.objects.get()
    barrier = threading.Barrier(2)
    results: list[str | None] = []

    def runner() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(followups.run_due(followup.pk, followup.scheduled_for))
        finally:
            connection.close()

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results, key=str) == [None, Status.SENT]
    assert Message.objects.filter(kind=Message.Kind.FOLLOWUP).count() == 1
    assert worker.count("messaging.tasks.deliver_message") == 1


# --- cancelled by the customer ---------------------------------------------------------------


def test_a_reply_cancels_the_contacts_pending_follow_ups(acme_sms, twilio, tick):
    first, second = analysed(acme_sms), analysed(acme_sms, at=TUE_10 + 5 * MINUTE)
    apply(first)
    apply(second)
    followups.approve(acme_sms, FollowUp.objects.get(call=second), actor=None, now=TUE_10)

    with time_machine.travel(TUE_10 + 30 * MINUTE, tick=False):
        text_in("Actually can you come Thursday?")

    rows = FollowUp.objects.order_by("pk")
    assert [(f.status, f.status_reason) for f in rows] == [
        (Status.CANCELLED, "the customer replied")
    ] * 2
    tick(TUE_10 + 3 * HOUR)
    assert sent_bodies(twilio) == []


def test_a_reply_while_the_text_waits_for_its_window_stops_it(acme_sms, twilio, tick):
    apply(analysed(acme_sms))
    followup = FollowUp.objects.get()
    followups.edit(
        acme_sms, followup, scheduled_for=datetime.datetime(2026, 3, 11, 2, 0, tzinfo=datetime.UTC)
    )
    followups.approve(acme_sms, followup, actor=None, now=TUE_10)
    tick(datetime.datetime(2026, 3, 11, 2, 0, tzinfo=datetime.UTC))

    with time_machine.travel(datetime.datetime(2026, 3, 11, 3, 0, tzinfo=datetime.UTC)):
        text_in("no thanks")
    tick(datetime.datetime(2026, 3, 11, 12, 0, tzinfo=datetime.UTC))

    followup.refresh_from_db()
    assert followup.status == Status.CANCELLED
    assert followup.message.status == Message.Status.BLOCKED
    assert followup.message.status_reason == "follow-up cancelled: the customer replied"
    assert sent_bodies(twilio) == []


def test_a_booking_cancels_the_contacts_earlier_follow_ups(acme_sms, twilio, tick):
    unbooked = analysed(acme_sms)
    apply(unbooked)
    followups.approve(acme_sms, FollowUp.objects.get(), actor=None, now=TUE_10)
    start = (TUE_10 + 48 * HOUR).isoformat()
    booked = analysed(
        acme_sms,
        at=TUE_10 + 30 * MINUTE,
        booking="booked",
        appointment={"start": start, "end": None, "address": None, "service_type": None},
    )

    apply(booked)

    assert Appointment.objects.filter(call=booked).count() == 1
    followup = FollowUp.objects.get()
    assert (followup.status, followup.status_reason) == (
        Status.CANCELLED,
        f"the contact booked (call {booked.pk})",
    )
    tick(TUE_10 + 3 * HOUR)
    assert sent_bodies(twilio) == []


def test_the_send_checks_the_follow_up_again_when_its_window_opens(acme_sms, twilio, tick):
    # a cancellation that raced the deferral and left the message waiting
    apply(analysed(acme_sms))
    followup = FollowUp.objects.get()
    late = datetime.datetime(2026, 3, 11, 2, 0, tzinfo=datetime.UTC)
    followups.edit(acme_sms, followup, scheduled_for=late)
    followups.approve(acme_sms, followup, actor=None, now=TUE_10)
    tick(late)
    FollowUp.objects.filter(pk=followup.pk).update(
        status=Status.CANCELLED, status_reason="cancelled by Kim"
    )

    tick(datetime.datetime(2026, 3, 11, 12, 0, tzinfo=datetime.UTC))

    followup.refresh_from_db()
    assert followup.status == Status.CANCELLED
    assert (followup.message.status, followup.message.status_reason) == (
        Message.Status.BLOCKED,
        "follow-up cancelled: cancelled by Kim",
    )
    assert sent_bodies(twilio) == []


def test_unreadable_business_hours_close_that_day_and_fail_no_call(acme_sms):
    acme_sms.business_hours = {
        "tue": ["8am", "6pm"],
        "wed": "09:00-17:00",
        "thu": ["09:00", "17:00"],
    }
    acme_sms.save(update_fields=["business_hours"])

    assert apply(analysed(acme_sms)) == Call.Stage.DONE

    # Tuesday and Wednesday do not parse: Thursday 09:00 EDT
    assert FollowUp.objects.get().scheduled_for == datetime.datetime(
        2026, 3, 12, 13, 0, tzinfo=datetime.UTC
    )
