"""Leads from calls: one active lead per contact, its status by precedence (a person's
status is never replaced by a weaker one), every change in its history; and people's
overrides of the analysis win over the model's values."""

from __future__ import annotations

import pytest

from analysis.models import CallAnalysis
from appointments import outcomes, pipeline
from appointments.models import Appointment, KeySignal, Lead, LeadStatusChange, Task
from appointments.services import change_lead_status
from tests.appointments.conftest import analysed_call

S = Lead.Status


def apply(company, scenario: str, **fields):
    call = analysed_call(company, scenario, **fields)
    pipeline.apply_call(call.pk)
    return call


def lead_of(call) -> Lead:
    return Lead.objects.get(contact=call.contact, is_active=True)


@pytest.mark.parametrize(
    ("current", "target", "replaced"),
    [
        (S.NEW, S.WARM, True),
        (S.WARM, S.HOT, True),
        (S.HOT, S.QUALIFIED_UNBOOKED, True),
        (S.QUALIFIED_UNBOOKED, S.QUALIFIED_BOOKED, True),
        (S.QUALIFIED_BOOKED, S.QUALIFIED_UNBOOKED, False),
        (S.QUALIFIED_UNBOOKED, S.QUALIFIED_SERVICE_NOT_OFFERED, False),
        (S.HOT, S.WARM, False),
        (S.NURTURING, S.HOT, False),
        (S.NURTURING, S.QUALIFIED_UNBOOKED, True),
        (S.DORMANT, S.WARM, False),
        (S.DORMANT, S.HOT, True),
        (S.ABANDONED, S.QUALIFIED_BOOKED, True),
    ],
)
def test_the_rank_table_from_another_call(current, target, replaced):
    assert outcomes.may_replace(current, target, last=None, call=None) is replaced


def test_a_second_call_of_the_contact_keeps_its_one_lead_and_the_stronger_status(acme, sandbox):
    first = apply(acme, "booked")
    # the same caller rings again and books nothing
    second = apply(acme, "price_objection", contact=first.contact)

    lead = lead_of(second)
    assert Lead.objects.filter(contact=first.contact).count() == 1
    assert lead.status == S.QUALIFIED_BOOKED
    assert lead.last_contacted_at == max(first.started_at, second.started_at)
    assert LeadStatusChange.objects.filter(lead=lead).count() == 1
    # its tasks belong to the same lead
    assert set(Task.objects.filter(call=second).values_list("lead", flat=True)) == {lead.pk}


def test_a_manual_status_is_not_replaced_by_a_weaker_one(acme, sandbox, acme_manager):
    first = apply(acme, "spam")
    lead = lead_of(first)
    assert lead.status == S.NEW
    change_lead_status(lead, S.NURTURING, actor=acme_manager.user, reason="call in spring")

    # another call from the same number, then a re-application of the first call
    apply(acme, "spam", contact=first.contact)
    pipeline.reapply_outcomes(
        type(first).objects.get(pk=first.pk), actor=acme_manager.user, reason="check"
    )
    pipeline.apply_call(first.pk)

    lead.refresh_from_db()
    assert lead.status == S.NURTURING


def test_a_stronger_status_replaces_a_manual_one_with_its_reason(acme, sandbox, acme_manager):
    first = apply(acme, "price_objection")
    lead = lead_of(first)
    change_lead_status(lead, S.NURTURING, actor=acme_manager.user, reason="call in spring")

    booked = apply(acme, "booked", contact=first.contact)

    lead.refresh_from_db()
    assert lead.status == S.QUALIFIED_BOOKED
    last = lead.history.order_by("-created_at", "-pk").first()
    assert (last.from_status, last.to_status, last.actor, last.call_id) == (
        S.NURTURING,
        S.QUALIFIED_BOOKED,
        None,
        booked.pk,
    )
    assert last.reason.startswith("analysis v1: booked")


def test_a_closed_lead_is_kept_and_the_next_call_opens_a_new_one(acme, sandbox, acme_manager):
    first = apply(acme, "booked")
    won = lead_of(first)
    change_lead_status(won, S.CLOSED_WON, actor=acme_manager.user, reason="job done")

    later = apply(acme, "price_objection", contact=first.contact)

    won.refresh_from_db()
    assert (won.status, won.is_active) == (S.CLOSED_WON, False)
    fresh = lead_of(later)
    assert fresh.pk != won.pk and fresh.status == S.QUALIFIED_UNBOOKED
    assert Task.objects.filter(call=later, lead=fresh).count() == 2


def test_an_override_of_booking_status_wins_over_the_model(acme, sandbox):
    call = analysed_call(acme, "booked")
    analysis = CallAnalysis.objects.get(call=call)
    analysis.overrides = {"booking_status": "not_booked"}
    analysis.save()

    pipeline.apply_call(call.pk)

    assert lead_of(call).status == S.QUALIFIED_UNBOOKED
    assert not Appointment.objects.filter(call=call).exists()
    assert list(Task.objects.filter(call=call).values_list("type", flat=True)) == ["follow_up_call"]


def test_an_override_of_the_objections_raises_the_competitor_signal(acme, sandbox):
    call = analysed_call(acme, "angry")
    analysis = CallAnalysis.objects.get(call=call)
    quote = "I'm calling another company for a second opinion."
    analysis.overrides = {
        "objections": [{"category": "competitor", "quote": quote, "resolved": False}],
        "urgency": "emergency",
        "sentiment": -0.9,
    }
    analysis.save()

    pipeline.apply_call(call.pk)

    signals = dict(KeySignal.objects.filter(call=call).values_list("type", "severity"))
    assert signals == {
        "competitor_mentioned": "medium",
        "urgent": "high",
        "negative_sentiment": "high",
    }
    assert KeySignal.objects.get(call=call, type="competitor_mentioned").detail == quote


def test_a_withdrawn_signal_goes_unless_someone_acknowledged_it(acme, sandbox, acme_manager):
    from django.utils import timezone

    call = apply(acme, "angry")
    KeySignal.objects.filter(call=call, type="many_objections").update(
        acknowledged_at=timezone.now(), acknowledged_by=acme_manager.user
    )
    analysis = CallAnalysis.objects.get(call=call)
    analysis.overrides = {"objections": [], "sentiment": 0.2}
    analysis.save()

    pipeline.reapply_outcomes(type(call).objects.get(pk=call.pk), actor=acme_manager.user)
    pipeline.apply_call(call.pk)

    assert list(KeySignal.objects.filter(call=call).values_list("type", flat=True)) == [
        "many_objections"
    ]


def test_the_appointment_goes_to_the_leads_rep_and_tasks_to_the_csr(
    acme, sandbox, acme_rep, acme_csr
):
    first = apply(acme, "price_objection")
    Lead.objects.filter(pk=lead_of(first).pk).update(assigned_rep=acme_rep.user)

    booked = analysed_call(acme, "card_number", contact=first.contact)
    type(booked).objects.filter(pk=booked.pk).update(handled_by=acme_csr.user)
    pipeline.apply_call(booked.pk)

    assert Appointment.objects.get(call=booked).assigned_rep == acme_rep.user
    assert Task.objects.get(call=booked).assignee == acme_csr.user
