"""Reliability of the pipeline's plumbing on real PostgreSQL and Redis: the broker down
during ingest, two schedulers racing for one schedule, and a poisoned schedule row.

A worker killed mid-transcription and a provider outage have their own tests
(tests/pipeline/test_transcription.py and the worker-killed test).
"""

from __future__ import annotations

import ast
import datetime
import io
import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.signing import SignedPackage

from calls.models import Call, CallStageChange, Transcript
from integrations import services as inbox_services
from integrations.models import WebhookEvent
from otto.queues import Queue, reset_brokers, task
from otto.schedules import FIRE, Job, register
from otto.tasks import heartbeat
from tests.calls.conftest import ACME_COM, ACME_KEY, configure_callrail, make_calls
from tests.conftest import ROOT, manage_env, wait_for

CLOSED_PORT = "redis://127.0.0.1:1/0"
WEBHOOKS = 50


def broker_packages(broker_redis, cluster: str = "default") -> list[dict]:
    return [SignedPackage.loads(raw) for raw in broker_redis.lrange(f"django_q:{cluster}:q", 0, -1)]


# --- Redis down during ingest ----------------------------------------------------------


# Issue 9 §4: a missed-call text-back that is minutes late loses the lead.
RECOVERY_BUDGET = 180.0  # seconds from the broker's return
REAPERS = ("reap-webhook-events", "retry-due-calls")


@pytest.mark.cluster
def test_webhooks_received_while_the_broker_is_down_are_all_processed_once_it_is_back(
    acme, sandbox, live_server, start_qcluster, broker_redis, monkeypatch
):
    configure_callrail(acme, ids=[ACME_COM], key=ACME_KEY)
    # given the production schedules of the two reapers, and no others to muddy the counts
    call_command("sync_schedules", stdout=io.StringIO())
    Schedule.objects.exclude(name__in=REAPERS).delete()
    # given the web process's broker points at a closed port
    monkeypatch.setattr(Conf, "REDIS", CLOSED_PORT)
    reset_brokers()

    # when CallRail delivers 50 signed post-call webhooks to the live server
    made = make_calls(
        sandbox,
        WEBHOOKS,
        scenario="booked",
        signing_key=ACME_KEY,
        webhook_url=f"{live_server.url}/callrail/call.completed",
    )

    # then every delivery is acknowledged and stored, marked as never enqueued, and nothing
    # reached Redis
    assert [call["status"] for call in made] == [200] * WEBHOOKS
    received = WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED)
    assert received.filter(enqueue_failed_at__isnull=False).count() == WEBHOOKS
    assert not Call.objects.exists()
    assert broker_packages(broker_redis) == []

    # when the broker is back, at the worst moment: each reaper ran just before, so its next
    # run is a whole interval away (the stored events are seconds old: no grace is over)
    monkeypatch.setattr(Conf, "REDIS", settings.Q_CLUSTER["redis"])
    reset_brokers()
    returned = time.monotonic()
    Schedule.objects.update(next_run=timezone.now() + datetime.timedelta(minutes=1))
    start_qcluster(SANDBOX_URL=sandbox.url, Q_WORKERS="4")

    # then all 50 calls are ingested, transcribed (and analysed) within the budget: none
    # lost (their outcomes follow on queue followups; tests/appointments covers them)
    after_analysis = (Call.Stage.ANALYZED, Call.Stage.APPLYING, Call.Stage.APPLIED, Call.Stage.DONE)
    done = Call.objects.filter(stage__in=after_analysis)
    try:
        remaining = RECOVERY_BUDGET - (time.monotonic() - returned)
        wait_for(lambda: done.count() == WEBHOOKS, timeout=remaining, interval=1)
        took = time.monotonic() - returned
        assert took <= RECOVERY_BUDGET, took
        assert Call.objects.count() == WEBHOOKS
        assert set(Call.objects.values_list("external_id", flat=True)) == {c["id"] for c in made}
        # and none twice: each event claimed once, each call fetched, ingested and
        # transcribed once
        events = WebhookEvent.objects.values_list("status", "attempts", "enqueue_failed_at")
        assert set(events) == {("processed", 1, None)}
        assert Call.webhook_events.through.objects.count() == WEBHOOKS
        # (every stage move of every call happened once: no stage ran twice)
        moves = (
            CallStageChange.objects.exclude(to_stage__in=after_analysis[1:])
            .values("to_stage")
            .annotate(calls=Count("id"))
        )
        assert {m["to_stage"] for m in moves} >= {Call.Stage.RECORDED, Call.Stage.TRANSCRIBED}
        assert {m["calls"] for m in moves} == {WEBHOOKS}
        assert Transcript.objects.count() == WEBHOOKS
        assert len(sandbox.recorded("callrail.media.file")) == WEBHOOKS
        assert len(sandbox.recorded("deepgram.listen")) == WEBHOOKS
        # and a later reaper run finds nothing left to re-enqueue
        later = timezone.now() + inbox_services.RECEIVED_GRACE * 2
        assert inbox_services.reap_events(now=later)["enqueued"] == 0
    finally:
        # the cluster's storage is the project's media root (it has no test settings)
        storage = FileSystemStorage(location=settings.BASE_DIR / "media")
        for name in Call.objects.exclude(recording="").values_list("recording", flat=True):
            if storage.exists(name):
                storage.delete(name)


# --- two schedulers ----------------------------------------------------------------------

LOCK_WAITERS = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
"""


def run_scheduler() -> subprocess.Popen:
    """One pass of django-q2's scheduler in its own process, exactly as the default
    cluster's guard loop runs it, against the test database and Redis.

    Not two whole qclusters: their guard loops call the scheduler every 30 s whatever the
    guard cycle, so they would take over 30 s and would seldom poll at the same moment.
    django-q2 (1.11) locks the due rows with a blocking ``select_for_update()``; after the
    first scheduler commits, PostgreSQL re-checks the second one's ``next_run < now`` on
    the updated row and skips it. Were django-q2 to switch to ``skip_locked``, the
    schedulers would no longer wait at the test's lock and this test would say so.
    """
    code = "from django_q.scheduler import scheduler; scheduler()"
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=manage_env(Q_CLUSTER_NAME="default", LOG_LEVEL="WARNING"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.cluster
def test_two_schedulers_fire_a_due_schedule_once(transactional_db, broker_redis):
    # given the registry's schedules, only the default queue's heartbeat due now
    call_command("sync_schedules", stdout=io.StringIO())
    Schedule.objects.update(next_run=timezone.now() + datetime.timedelta(hours=1))
    due = timezone.now() - datetime.timedelta(seconds=1)
    Schedule.objects.filter(name="heartbeat.default").update(next_run=due)

    # when two default-cluster schedulers poll at the same moment: both are held at the
    # row's lock until they are both waiting, so neither can finish before the other starts
    with transaction.atomic():
        Schedule.objects.select_for_update().get(name="heartbeat.default")
        schedulers = [run_scheduler(), run_scheduler()]

        def both_waiting() -> bool:
            with connection.cursor() as cursor:
                # pg_stat_activity is read once per transaction unless told to look again
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute(LOCK_WAITERS)
                return cursor.fetchone()[0] >= 2

        try:
            # two Django start-ups on a loaded machine can take a while
            wait_for(both_waiting, timeout=45)
        except TimeoutError:
            for process in schedulers:
                process.kill()
            outputs = [process.communicate()[0].decode()[-2000:] for process in schedulers]
            raise AssertionError(f"the schedulers never met at the lock: {outputs}") from None
    outputs = [process.communicate(timeout=15)[0].decode() for process in schedulers]

    # then the schedule fired once, and its next run is a minute later
    assert [process.returncode for process in schedulers] == [0, 0], outputs
    assert "Could not create task" not in "".join(outputs), outputs
    packages = broker_packages(broker_redis)
    assert [(p["func"], p["args"]) for p in packages] == [(FIRE, ("heartbeat.default",))]
    row = Schedule.objects.get(name="heartbeat.default")
    assert row.next_run - due == datetime.timedelta(minutes=1)
    assert Schedule.objects.filter(next_run__lt=timezone.now()).count() == 0


# --- poison schedules --------------------------------------------------------------------


@task
def touch(name: str) -> None:
    """A schedulable no-op for the registry's rules."""


@pytest.mark.parametrize(
    ("args", "func"),
    [
        pytest.param(({"call": 1},), touch, id="a-dict"),
        pytest.param((["a", "b"],), touch, id="a-list"),
        pytest.param((True,), touch, id="a-bool"),
        pytest.param((1.5,), touch, id="a-float"),
        pytest.param((object(),), touch, id="an-object"),
        pytest.param("asr", touch, id="a-string-not-a-tuple"),
        pytest.param(("asr",), print, id="not-a-task"),
    ],
)
def test_a_job_whose_args_are_not_ids_cannot_be_declared(args, func):
    with pytest.raises(ValueError, match="args must be|not an @otto.queues.task"):
        register(Job("poison", func, Queue.DEFAULT, minutes=1, args=args))


def test_a_job_with_ids_as_args_is_accepted():
    job = Job("fine", touch, Queue.DEFAULT, minutes=1, args=(1, "asr", uuid.uuid4()))

    assert len(job.args) == 3


def test_a_job_name_must_fit_the_schedule_row():
    with pytest.raises(ValueError, match="1 to 100 characters"):
        Job("x" * 101, heartbeat, Queue.DEFAULT, minutes=1, args=("default",))


@pytest.mark.django_db
def test_sync_schedules_puts_a_poisoned_row_back_as_the_code_says():
    # given a row whose arguments no longer parse (edited in SQL, or an old version's)
    call_command("sync_schedules", stdout=io.StringIO())
    Schedule.objects.filter(name="heartbeat.asr").update(
        func="os.system", args="('heartbeat.asr'", kwargs="{'x': "
    )

    call_command("sync_schedules", stdout=io.StringIO())

    # then every row names its job, and each parses as django-q2's scheduler will parse it
    row = Schedule.objects.get(name="heartbeat.asr")
    assert (row.func, row.args, row.kwargs) == (FIRE, "('heartbeat.asr',)", "")
    for row in Schedule.objects.filter(func=FIRE):
        assert ast.literal_eval(row.args) == (row.name,)


@pytest.mark.django_db
def test_the_admin_cannot_edit_a_schedule(admin_client):
    call_command("sync_schedules", stdout=io.StringIO())
    row = Schedule.objects.get(name="heartbeat.default")
    before = Schedule.objects.values().get(pk=row.pk)
    url = reverse("admin:django_q_schedule_change", args=[row.pk])

    # the form shows no input for any field
    page = admin_client.get(url)
    assert page.status_code == 200
    for name in ("func", "args", "kwargs", "minutes", "next_run", "cluster"):
        assert f'name="{name}"' not in page.content.decode(), name

    # and a hand-made POST changes nothing
    admin_client.post(
        url,
        {
            "name": "heartbeat.default",
            "func": "os.system",
            "args": "('rm -rf /',)",
            "kwargs": "{'x': ",
            "schedule_type": "O",
            "minutes": "0",
            "repeats": "-1",
            "cluster": "elsewhere",
        },
    )
    assert Schedule.objects.values().get(pk=row.pk) == before

    # and schedules can be neither added nor deleted there
    assert admin_client.get(reverse("admin:django_q_schedule_add")).status_code == 403
    delete = reverse("admin:django_q_schedule_delete", args=[row.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Schedule.objects.filter(pk=row.pk).exists()


@pytest.mark.django_db
def test_the_admin_pauses_and_resumes_a_schedule(admin_client):
    call_command("sync_schedules", stdout=io.StringIO())
    row = Schedule.objects.get(name="heartbeat.default")
    changelist = reverse("admin:django_q_schedule_changelist")

    admin_client.post(changelist, {"action": "pause", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.repeats == 0

    admin_client.post(changelist, {"action": "resume", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert (row.repeats, row.func, row.args) == (-1, FIRE, "('heartbeat.default',)")
