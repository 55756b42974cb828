"""The applied stage: analysed calls are handed to it on queue ``followups``, claimed once,
and their outcomes written exactly once per analysis version, whatever the redeliveries,
re-analyses and dead workers."""

from __future__ import annotations

import datetime
import os
import signal
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from analysis import services as analysis_services
from analysis.models import CallAnalysis, KpiDay, KpiDirtyDay
from appointments import pipeline
from appointments.models import Appointment, Lead, LeadStatusChange, Task
from calls import pipeline as calls_pipeline
from calls import stages, sweeps
from calls.models import Call, CallStageChange
from tests.appointments.conftest import APPLY, GEOCODE, analysed_call
from tests.conftest import subprocess_database_url, wait_for

Stage = Call.Stage
SECOND = datetime.timedelta(seconds=1)


def moves(call) -> list[tuple[str, str]]:
    rows = CallStageChange.objects.filter(call=call).order_by("created_at", "pk")
    return list(rows.values_list("from_stage", "to_stage"))


def reanalyse(call, **changes) -> CallAnalysis:
    """A new analysis version of ``call`` (its current one with ``changes``), handed to the
    applied stage exactly as analysis' record_analysis does."""
    call.refresh_from_db()
    current = CallAnalysis.objects.get(call=call, is_current=True)
    fields = {
        name: getattr(current, name)
        for name in analysis_services.OVERRIDABLE
        if name not in ("overrides",)
    }
    fields.update(changes)
    with transaction.atomic():
        assert stages.move(Call.objects.filter(stage=call.stage), call, Stage.ANALYZED)
        analysis = analysis_services.add_version(call, fields)
        calls_pipeline.handoff_for(Stage.ANALYZED)(call)
    return analysis


def test_analysis_hands_the_call_to_the_applied_stage_on_followups(acme, sandbox, run_tasks):
    call = analysed_call(acme, "booked")
    Call.objects.filter(pk=call.pk).update(stage=Stage.TRANSCRIBED)
    call.refresh_from_db()

    with run_tasks() as worker:
        worker.held = {APPLY}
        assert analysis_services.analyze_call(call.pk) == Stage.ANALYZED

    assert ("followups", APPLY, (call.pk,)) in worker.pushed
    call.refresh_from_db()
    # its attempts restart: analysis' were its own
    assert (call.stage, call.attempts) == (Stage.ANALYZED, 0)


def test_a_booked_call_goes_to_done_and_its_address_is_geocoded_after_commit(
    acme, sandbox, run_tasks, geocode_requests
):
    call = analysed_call(acme, "booked")

    with run_tasks() as worker:
        assert pipeline.apply_call(call.pk) == Stage.DONE

    assert worker.count(GEOCODE) == 1 and worker.failed == []
    assert moves(call)[-3:] == [
        (Stage.ANALYZED, Stage.APPLYING),
        (Stage.APPLYING, Stage.APPLIED),
        (Stage.APPLIED, Stage.DONE),
    ]
    appointment = Appointment.objects.get(call=call)
    assert appointment.geocode_status == "ok"
    assert appointment.latitude is not None and appointment.longitude is not None
    assert geocode_requests() == ["1420 Maple Street"]


def test_a_duplicate_delivery_writes_nothing_twice(acme, sandbox):
    call = analysed_call(acme, "price_objection")
    assert pipeline.apply_call(call.pk) == Stage.DONE

    # the broker delivers the task again
    assert pipeline.apply_call(call.pk) is None

    assert Lead.objects.filter(contact=call.contact).count() == 1
    assert LeadStatusChange.objects.filter(call=call).count() == 1
    assert Task.objects.filter(call=call).count() == 2
    assert [m for m in moves(call) if m[1] == Stage.APPLYING] == [(Stage.ANALYZED, Stage.APPLYING)]


def test_a_second_worker_cannot_claim_a_call_being_applied(acme, sandbox):
    call = analysed_call(acme, "booked")
    assert stages.claim(call, Stage.APPLYING) is not None

    assert pipeline.apply_call(call.pk) is None
    assert Appointment.objects.filter(call=call).count() == 0


def test_a_re_analysis_that_agrees_updates_the_one_appointment(acme, sandbox, run_tasks):
    call = analysed_call(acme, "booked")
    pipeline.apply_call(call.pk)

    with run_tasks() as worker:
        reanalyse(call)
    call.refresh_from_db()

    assert worker.count(APPLY) == 1 and call.stage == Stage.DONE
    (appointment,) = Appointment.objects.filter(call=call)
    assert appointment.analysis_version == 2 and appointment.status == "scheduled"
    # the address did not change: it is not geocoded again
    assert worker.count(GEOCODE) == 0
    assert LeadStatusChange.objects.filter(call=call).count() == 1


def test_a_re_analysis_that_says_not_booked_cancels_the_appointment_and_says_why(
    acme, sandbox, run_tasks
):
    call = analysed_call(acme, "booked")
    pipeline.apply_call(call.pk)

    with run_tasks():
        reanalyse(call, booking_status="not_booked", qualified=True, appointment=None)

    (appointment,) = Appointment.objects.filter(call=call)
    assert appointment.status == "cancelled" and "v2" in appointment.notes
    lead = Lead.objects.get(contact=call.contact)
    assert lead.status == "qualified_unbooked"
    change = lead.history.order_by("-created_at", "-pk").first()
    assert (change.from_status, change.to_status, change.analysis_version) == (
        "qualified_booked",
        "qualified_unbooked",
        2,
    )
    assert change.reason.startswith("re-analysis v2: qualified_booked → qualified_unbooked")
    # an unbooked qualified call leaves someone something to do
    assert list(Task.objects.filter(call=call).values_list("type", flat=True)) == ["follow_up_call"]


def test_a_re_analysis_leaves_an_appointment_people_took_on(acme, sandbox, run_tasks):
    call = analysed_call(acme, "booked")
    pipeline.apply_call(call.pk)
    Appointment.objects.filter(call=call).update(status="confirmed")

    with run_tasks():
        reanalyse(call, booking_status="not_booked", appointment=None)

    (appointment,) = Appointment.objects.filter(call=call)
    assert (appointment.status, appointment.analysis_version) == ("confirmed", 1)


def test_re_analysed_actions_update_their_task_and_withdraw_dropped_ones(acme, sandbox, run_tasks):
    call = analysed_call(acme, "price_objection")
    pipeline.apply_call(call.pk)
    quote = Task.objects.get(call=call, type="send_quote")
    actions = [
        {"type": "send_quote", "description": "Email the furnace quote", "due": "Thursday"},
    ]

    with run_tasks():
        reanalyse(call, pending_actions=actions)

    quote.refresh_from_db()
    assert (quote.description, quote.status, quote.analysis_version) == (
        "Email the furnace quote",
        "open",
        2,
    )
    # Thursday after Friday 2026-03-06, at the end of the working day in New York
    assert quote.due_at == datetime.datetime.fromisoformat("2026-03-12T17:00:00-04:00")
    follow_up = Task.objects.get(call=call, type="follow_up_call")
    assert follow_up.status == "cancelled"
    assert Task.objects.filter(call=call).count() == 2


def test_an_action_of_an_unknown_type_becomes_a_custom_task(acme, sandbox):
    call = analysed_call(acme, "spam")
    analysis = CallAnalysis.objects.get(call=call)
    analysis.overrides = {"pending_actions": [{"type": "bake_cake", "description": "Bake"}]}
    analysis.save()

    pipeline.apply_call(call.pk)

    assert list(Task.objects.filter(call=call).values_list("type", "description")) == [
        ("custom", "Bake")
    ]


def test_a_booked_call_without_a_time_gets_a_scheduling_task_not_an_appointment(acme, sandbox):
    call = analysed_call(acme, "booked")
    analysis = CallAnalysis.objects.get(call=call)
    analysis.overrides = {"appointment": {"start": None, "end": None, "address": "1 Elm St"}}
    analysis.save()

    pipeline.apply_call(call.pk)

    assert not Appointment.objects.filter(call=call).exists()
    assert list(Task.objects.filter(call=call).values_list("type", flat=True)) == [
        "schedule_appointment"
    ]


def test_an_apply_worker_that_died_is_taken_back_by_the_reaper(acme, sandbox, run_tasks):
    call = analysed_call(acme, "booked")
    stale = stages.claim(call, Stage.APPLYING)
    deadline = stages.deadline(Stage.APPLYING)
    Call.objects.filter(pk=call.pk).update(next_attempt_at=timezone.now() - SECOND)
    assert deadline > datetime.timedelta(minutes=10)

    with run_tasks() as worker:
        assert sweeps.retry_due_calls()["reclaimed"] == 1

    assert worker.count(APPLY) == 1
    assert Call.objects.get(pk=call.pk).stage == Stage.DONE
    assert Appointment.objects.filter(call=call).count() == 1
    # the presumed-dead worker, waking up, writes nothing
    with pytest.raises(stages.LeaseLost):
        pipeline.record_outcomes(stale)
    assert Appointment.objects.filter(call=call).count() == 1


def test_an_analysed_call_whose_task_was_lost_is_enqueued_by_the_reaper(acme, sandbox, run_tasks):
    call = analysed_call(acme, "booked")
    Call.objects.filter(pk=call.pk).update(next_attempt_at=timezone.now() - SECOND)

    with run_tasks() as worker:
        worker.held = {APPLY}
        assert sweeps.retry_due_calls()["enqueued"] == 1

    assert worker.pushed[-1] == ("followups", APPLY, (call.pk,))


def test_the_seam_after_applied_takes_the_call_when_a_handler_is_registered(acme, sandbox):
    taken = []
    # messaging's follow-ups hold the seam; swap in a recorder for this test
    registered = calls_pipeline.handoff_for(Stage.APPLIED)
    calls_pipeline.unregister_handoff(Stage.APPLIED)
    calls_pipeline.register_handoff(Stage.APPLIED, taken.append)
    try:
        call = analysed_call(acme, "booked")
        assert pipeline.apply_call(call.pk) == Stage.APPLIED
    finally:
        calls_pipeline.unregister_handoff(Stage.APPLIED)
        if registered is not None:
            calls_pipeline.register_handoff(Stage.APPLIED, registered)
    assert [c.pk for c in taken] == [call.pk]


@pytest.mark.cluster
def test_a_worker_killed_mid_apply_still_leaves_one_appointment(
    acme, sandbox, settings, start_qcluster
):
    # given an analysed call whose contact row another session holds, so the cluster's
    # apply worker blocks inside its transaction
    call = analysed_call(acme, "booked")
    blocker = psycopg.connect(subprocess_database_url())
    blocker.execute("SELECT 1 FROM otto_contact WHERE id = %s FOR UPDATE", [call.contact_id])
    # pushed before the cluster starts (autocommit: at once), so that the handoff's own
    # write to the call cannot queue behind a worker already holding the call
    calls_pipeline.handoff_for(Stage.ANALYZED)(call)
    first = start_qcluster(SANDBOX_URL=sandbox.url)
    try:
        wait_for(lambda: Call.objects.get(pk=call.pk).stage == Stage.APPLYING, timeout=15)

        # when the cluster is killed mid-apply
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
        blocker.rollback()

        # then nothing of its transaction is left, the reaper takes the call back once
        # the lease has passed, and a new cluster applies it once
        assert Appointment.objects.filter(call=call).count() == 0
        Call.objects.filter(pk=call.pk).update(next_attempt_at=timezone.now() - SECOND)
        assert sweeps.retry_due_calls()["reclaimed"] == 1
        start_qcluster(SANDBOX_URL=sandbox.url)
        wait_for(lambda: Call.objects.get(pk=call.pk).stage == Stage.DONE, timeout=30)
        assert Appointment.objects.filter(call=call).count() == 1
        assert Lead.objects.filter(contact=call.contact).count() == 1
        claims = CallStageChange.objects.filter(call=call, to_stage=Stage.APPLYING)
        assert claims.count() == 2
    finally:
        blocker.close()


def test_the_applied_stage_brings_the_kpis_daily_rollup_up_to_date(acme, sandbox):
    call = analysed_call(acme, "booked")
    day = timezone.localtime(call.started_at, ZoneInfo(acme.timezone)).date()
    marks = KpiDirtyDay.objects.filter(tenant=acme.pk, day=day)
    assert marks.exists()  # the call and its analysis marked the day

    assert pipeline.apply_call(call.pk) == Stage.DONE

    # Recomputed as the outcomes committed: the appointment made from it books it.
    assert not marks.exists()
    rows = KpiDay.objects.filter(company=acme, day=day, kind=KpiDay.Kind.HANDLER)
    totals = rows.aggregate(calls=Sum("calls"), analysed=Sum("analysed"), booked=Sum("booked"))
    assert totals == {"calls": 1, "analysed": 1, "booked": 1}
