"""Missed-call recovery against the sandbox's Twilio: the text-back, the nudges at their
times, the stop conditions (at the event and at send time), the 48 h task once, one
recovery per contact per 24 hours, quiet hours, and the recoveries/ API."""

from __future__ import annotations

import datetime
import threading
import time
from urllib.parse import parse_qsl

import pytest
import time_machine
from django.db import connection

from appointments.models import Task
from calls import pipeline
from calls.models import Call
from messaging import recovery, sending, services, tasks
from messaging.models import Message, MissedCallRecovery
from otto.models import Contact
from tests.api.factories import CallFactory
from tests.calls.conftest import ACME_KEY, make_calls
from tests.integrations.fixtures import load, post_callrail
from tests.messaging.conftest import CUSTOMER, text_in

Status = MissedCallRecovery.Status
HOUR = datetime.timedelta(hours=1)
MINUTE = datetime.timedelta(minutes=1)
# 09:00 in New York (EDT), the customer's zone: every step is inside the window
# (+2 h 11:00, +10 h 19:00, +24 h and +48 h 09:00).
T0 = datetime.datetime(2026, 3, 10, 13, 0, tzinfo=datetime.UTC)
VOICEMAIL_CAL = "CAL8154748ae6bd4e278a7cddd38a662f4f"
TEXT_BACK = recovery.DEFAULT_TEXT_BACK.split("{company}")[0]


def sent_bodies(sandbox) -> list[str]:
    return [dict(parse_qsl(r["body"]))["Body"] for r in sandbox.recorded("twilio.messages.create")]


def missed(company, at: datetime.datetime = T0, phone: str = CUSTOMER, **fields) -> Call:
    contact, _ = Contact.objects.get_or_create(company=company, phone=phone)
    spec = {"answered": False, "stage": Call.Stage.SKIPPED, **fields}
    return CallFactory(
        company=company, contact=contact, customer_number=phone, started_at=at, **spec
    )


@pytest.fixture
def at(run_tasks):
    """``at(when)``: the clock is ``when``; the minute schedules run, and every task they
    (and the block) push runs inline, as the followups workers would."""

    def travel(when: datetime.datetime, *, schedules: bool = True):
        class Moment:
            def __enter__(self):
                self.clock = time_machine.travel(when, tick=False)
                self.clock.start()
                self.tasks = run_tasks()
                worker = self.tasks.__enter__()
                if schedules:
                    tasks.dispatch_due_recoveries()
                    tasks.dispatch_due_messages()
                return worker

            def __exit__(self, *exc):
                self.tasks.__exit__(*exc)
                self.clock.stop()

        return Moment()

    return travel


def start(company, when: datetime.datetime = T0, at=None, **fields) -> MissedCallRecovery | None:
    call = missed(company, when, **fields)
    with at(when, schedules=False):
        pipeline.missed_call(call)
    return MissedCallRecovery.objects.filter(call=call).first()


def rec(recovery_row: MissedCallRecovery) -> MissedCallRecovery:
    recovery_row.refresh_from_db()
    return recovery_row


def test_the_text_back_each_nudge_at_its_time_and_the_48h_task_once(acme_sms, twilio, at):
    row = start(acme_sms, at=at)
    assert sent_bodies(twilio) == [recovery.DEFAULT_TEXT_BACK.format(company=acme_sms.name)]
    message = Message.objects.get(kind=Message.Kind.RECOVERY)
    assert message.recovery == row and message.status == Message.Status.SENDING
    assert (rec(row).step, row.next_action_at) == (1, T0 + 2 * HOUR)

    for hours, texts in [(2, 2), (10, 3), (24, 4)]:
        with at(T0 + hours * HOUR - MINUTE):
            pass
        assert len(sent_bodies(twilio)) == texts - 1, f"nothing before +{hours} h"
        with at(T0 + hours * HOUR):
            pass
        assert len(sent_bodies(twilio)) == texts, f"the +{hours} h nudge"
    assert sent_bodies(twilio)[-1].startswith(f"{acme_sms.name}: just following up")

    for _ in range(2):
        with at(T0 + 48 * HOUR):
            pass
    with at(T0 + 49 * HOUR):
        assert recovery.run_step(row.pk) is None
    task = Task.objects.get(source=Task.Source.RECOVERY)
    assert (task.contact, task.call, task.type) == (row.contact, row.call, Task.Type.CALL_BACK)
    assert rec(row).status == Status.ESCALATED and row.next_action_at is None
    assert len(sent_bodies(twilio)) == 4


def test_the_tenants_own_text_back_is_sent(acme_sms, twilio, at):
    acme_sms.recovery_text = "{company} here {sorry} we missed you"
    acme_sms.save(update_fields=["recovery_text"])

    start(acme_sms, at=at)

    assert sent_bodies(twilio) == ["Acme Heating here {sorry} we missed you"]


def test_a_reply_at_3h_stops_the_10h_nudge(acme_sms, twilio, at):
    row = start(acme_sms, at=at)
    with at(T0 + 2 * HOUR):
        pass
    with at(T0 + 3 * HOUR):
        text_in("Yes please call me after 5")

    assert (rec(row).status, row.stopped_reason) == (Status.REPLIED, services.REPLIED)
    with at(T0 + 10 * HOUR):
        pass
    assert len(sent_bodies(twilio)) == 2


def test_a_later_answered_call_stops_it_when_the_next_step_comes(acme_sms, twilio, at):
    row = start(acme_sms, at=at)
    missed(acme_sms, T0 + 3 * HOUR, answered=True, stage=Call.Stage.RECORDED)

    with at(T0 + 10 * HOUR):
        pass

    assert (rec(row).status, row.stopped_reason) == (Status.STOPPED, recovery.ANSWERED)
    assert len(sent_bodies(twilio)) == 1


def test_a_person_texting_them_stops_it(acme_sms, twilio, at, acme_csr):
    row = start(acme_sms, at=at)
    thread = Message.objects.get().thread
    with at(T0 + 3 * HOUR, schedules=False):
        response = acme_csr.client().post(
            f"/api/v1/threads/{thread.pk}/messages/", {"body": "Hi, Sam here"}, format="json"
        )
    assert response.status_code == 201, response.content

    assert (rec(row).status, row.stopped_reason) == (Status.STOPPED, services.PERSON_TEXTED)
    with at(T0 + 10 * HOUR):
        pass
    assert sent_bodies(twilio)[1:] == ["Hi, Sam here"]


def test_stop_ends_it_and_blocks_the_rest(acme_sms, twilio, at):
    row = start(acme_sms, at=at)
    with at(T0 + HOUR):
        text_in("STOP")

    assert (rec(row).status, row.stopped_reason) == (Status.STOPPED, services.OPTED_OUT)
    for hours in (2, 10, 24, 48):
        with at(T0 + hours * HOUR):
            pass
    assert len(sent_bodies(twilio)) == 1
    assert not Task.objects.exists()
    # and no new missed call texts them either: the gate refuses it
    later = start(acme_sms, T0 + 30 * HOUR, at=at)
    assert later is not None and rec(later).status == Status.STOPPED
    assert len(sent_bodies(twilio)) == 1


def test_a_reply_between_the_claim_and_the_send_stops_it(acme_sms, twilio, at, monkeypatch):
    row = start(acme_sms, at=at)
    claim = sending.claim

    def reply_lands(message_id, now):
        claimed = claim(message_id, now)
        text_in("Who is this?", sid="SM" + "b" * 32)
        return claimed

    monkeypatch.setattr(sending, "claim", reply_lands)
    with at(T0 + 2 * HOUR) as worker:
        pass

    assert worker.failed == []
    nudge = Message.objects.filter(kind=Message.Kind.RECOVERY).order_by("pk").last()
    assert nudge.status == Message.Status.BLOCKED
    assert nudge.status_reason == f"recovery stopped: {services.REPLIED}"
    assert rec(row).status == Status.REPLIED
    assert len(sent_bodies(twilio)) == 1


def test_two_workers_take_a_step_once_and_a_long_outage_sends_one_nudge(acme_sms, twilio, at):
    row = start(acme_sms, at=at)
    # the cluster was down from +1 h to +11 h: the +2 h and +10 h nudges are both overdue
    with at(T0 + 11 * HOUR) as worker:
        tasks.dispatch_due_recoveries()  # a second cluster's schedule fires too
        # a third worker takes the step before the two dispatched tasks run
        assert recovery.run_step(row.pk) == "step 2"

    assert worker.count("messaging.tasks.run_recovery_step") == 2
    assert len(sent_bodies(twilio)) == 2
    assert (rec(row).step, row.next_action_at) == (3, T0 + 24 * HOUR)
    with at(T0 + 24 * HOUR):
        pass
    assert len(sent_bodies(twilio)) == 3


@pytest.mark.django_db(transaction=True)
def test_two_clusters_racing_for_one_step_take_it_once(acme_sms, twilio, worker):
    row = recovery.start(missed(acme_sms, T0), now=T0)
    barrier = threading.Barrier(2)
    results: list[str | None] = []

    def cluster() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(recovery.run_step(row.pk, T0 + 2 * HOUR))
        finally:
            connection.close()

    threads = [threading.Thread(target=cluster) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results, key=str) == [None, "step 1"]
    assert Message.objects.filter(kind=Message.Kind.RECOVERY).count() == 2
    assert worker.count("messaging.tasks.deliver_message") == 2


def test_two_missed_calls_in_ten_minutes_send_one_text_back(acme_sms, twilio, at):
    # across midnight in New York, too: the window is 24 hours, not a calendar day
    first_at = datetime.datetime(2026, 3, 11, 3, 55, tzinfo=datetime.UTC)  # 23:55 EDT
    first = start(acme_sms, first_at, at=at)
    second = start(acme_sms, first_at + 10 * MINUTE, at=at)

    assert first is not None and second is None
    assert MissedCallRecovery.objects.count() == 1
    assert Message.objects.filter(kind=Message.Kind.RECOVERY).count() == 1
    # a day later the contact may get a new recovery
    third = start(acme_sms, first_at + 24 * HOUR, at=at)
    assert third is not None


def test_a_missed_call_at_night_is_texted_when_the_window_opens(acme_sms, twilio, at):
    night = datetime.datetime(2026, 3, 11, 2, 30, tzinfo=datetime.UTC)  # 22:30 EDT
    opening = datetime.datetime(2026, 3, 11, 12, 0, tzinfo=datetime.UTC)  # 08:00 EDT
    row = start(acme_sms, night, at=at)

    message = Message.objects.get(kind=Message.Kind.RECOVERY)
    assert (message.status, message.scheduled_for) == (Message.Status.SCHEDULED, opening)
    assert sent_bodies(twilio) == []
    # the +2 h nudge (00:30) is deferred as well, never skipped
    with at(night + 2 * HOUR):
        pass
    with at(opening - MINUTE):
        pass
    assert sent_bodies(twilio) == []

    with at(opening):
        pass
    with at(opening + MINUTE):
        pass
    bodies = sent_bodies(twilio)
    assert len(bodies) == 2 and bodies[0].startswith(TEXT_BACK)
    assert rec(row).status == Status.ACTIVE and row.step == 2


def test_answered_blocked_and_outbound_calls_start_no_recovery(acme_sms, twilio, at):
    acme_sms.recovery_block_list = ["+12125550199"]
    acme_sms.save(update_fields=["recovery_block_list"])

    assert start(acme_sms, at=at, answered=True) is None
    assert start(acme_sms, at=at, phone="+12125550199") is None
    assert start(acme_sms, at=at, direction=Call.Direction.OUTBOUND) is None
    # a call backfilled from last week is history, not a caller waiting
    old = missed(acme_sms, T0 - 7 * 24 * HOUR, phone="+12125550144")
    with at(T0, schedules=False):
        pipeline.missed_call(old)
    assert not MissedCallRecovery.objects.exists()
    assert sent_bodies(twilio) == []


def test_a_voicemail_webhook_is_texted_back_within_a_minute(
    acme_callrail,
    acme_sms,
    twilio,
    client,
    run_tasks,  # noqa: F811
):
    made = make_calls(twilio, call_id=VOICEMAIL_CAL, scenario="voicemail")[0]
    body = load("callrail", "call.completed.voicemail_resource_ids")

    # 17:00 UTC: inside the window in every US zone
    with time_machine.travel(T0 + 4 * HOUR, tick=True), run_tasks():
        webhook_at = time.time()
        response = post_callrail(client, "call.completed", body, ACME_KEY)

    assert response.status_code == 200, response.content
    call = Call.objects.get(external_id=made["id"])
    assert call.voicemail and call.stage == Call.Stage.RECORDED
    [create] = twilio.recorded("twilio.messages.create")
    assert create["at"] - webhook_at < 60
    assert dict(parse_qsl(create["body"]))["To"] == call.customer_number
    assert MissedCallRecovery.objects.get().call == call


def test_recoveries_list_filters_and_roles(acme_sms, twilio, at, acme_csr, acme_rep):
    first = start(acme_sms, at=at)
    second = start(acme_sms, T0 + 30 * HOUR, at=at, phone="+12125550143")
    MissedCallRecovery.objects.filter(pk=first.pk).update(status=Status.REPLIED)

    response = acme_csr.client().get("/api/v1/recoveries/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["id"] for r in rows] == [second.pk, first.pk]
    assert rows[0]["status"] == "active" and rows[0]["step"] == 1 and rows[0]["call"]

    replied = acme_csr.client().get("/api/v1/recoveries/?status=replied").json()["results"]
    assert [r["id"] for r in replied] == [first.pk]
    later = f"/api/v1/recoveries/?date_from={(T0 + HOUR).isoformat().replace('+', '%2B')}"
    assert [r["id"] for r in acme_csr.client().get(later).json()["results"]] == [second.pk]
    assert acme_csr.client().get("/api/v1/recoveries/?status=nope").status_code == 400
    assert acme_rep.client().get("/api/v1/recoveries/").status_code == 403
