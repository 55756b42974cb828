import pytest
from django_q.models import Schedule
from django_q.signing import SignedPackage

from otto.queues import Queue
from otto.schedules import FIRE, Job, fire, register, registry, sync
from otto.tasks import heartbeat

pytestmark = pytest.mark.django_db


def test_sync_is_idempotent():
    Schedule.objects.all().delete()

    first = sync()
    rows = sorted(Schedule.objects.values_list("name", flat=True))
    second = sync()

    assert first["created"] == len(registry())
    assert second == {"created": 0, "updated": 0, "unchanged": len(registry()), "deleted": 0}
    assert sorted(Schedule.objects.values_list("name", flat=True)) == rows
    assert len(rows) == len(set(rows))


def test_every_queue_has_a_heartbeat_every_minute():
    sync()

    heartbeats = Schedule.objects.filter(name__startswith="heartbeat.")

    assert {row.name for row in heartbeats} == {f"heartbeat.{queue}" for queue in Queue}
    assert {(row.func, row.schedule_type, row.minutes) for row in heartbeats} == {(FIRE, "I", 1)}
    assert all(row.cluster is None for row in heartbeats)


def test_sync_keeps_a_pause_and_repairs_an_edit():
    sync()
    Schedule.objects.filter(name="heartbeat.asr").update(repeats=0, minutes=30, args="('x',)")

    counts = sync()

    row = Schedule.objects.get(name="heartbeat.asr")
    assert counts["updated"] == 1
    assert (row.repeats, row.minutes, row.args) == (0, 1, "('heartbeat.asr',)")


def test_sync_removes_schedules_no_longer_in_code_and_leaves_others_alone():
    sync()
    Schedule.objects.create(name="retired-job", func=FIRE, args="('retired-job',)")
    Schedule.objects.create(name="ops-one-off", func="django.core.management.call_command")

    assert sync()["deleted"] == 1

    assert not Schedule.objects.filter(name="retired-job").exists()
    assert Schedule.objects.filter(name="ops-one-off").exists()


def test_firing_a_schedule_enqueues_its_job_on_its_queue(
    django_capture_on_commit_callbacks, broker_redis
):
    with django_capture_on_commit_callbacks(execute=True):
        fire("heartbeat.analysis")

    [package] = [
        SignedPackage.loads(raw) for raw in broker_redis.lrange("django_q:default:q", 0, -1)
    ]
    assert (package["func"], package["args"]) == ("otto.tasks.heartbeat", ("analysis",))


def test_a_job_with_an_unknown_queue_cannot_be_declared():
    with pytest.raises(ValueError, match="Unknown queue"):
        Job("typo", heartbeat, "anaylsis", minutes=5)


def test_one_name_cannot_be_registered_twice_differently():
    with pytest.raises(ValueError, match="registered twice"):
        register(Job("heartbeat.asr", heartbeat, Queue.ASR, minutes=5, args=("asr",)))
