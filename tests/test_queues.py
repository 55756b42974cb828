"""``enqueue`` refuses what would be lost, and pushes only what was committed."""

import pytest
import sentry_sdk
from django.db import transaction
from django.test import override_settings
from django_q.signing import SignedPackage

from otto.logging import bind_request_id
from otto.queues import DEFAULT_CLUSTER, Queue, UnknownQueueError, enqueue, task

pytestmark = pytest.mark.django_db(transaction=True)


@task
def record(call_id: int) -> None:
    pass


@task
def explode(call_id: int) -> None:
    raise RuntimeError(f"stage failed for call {call_id}")


def queued(broker_redis, cluster: str = DEFAULT_CLUSTER) -> list[dict]:
    return [SignedPackage.loads(raw) for raw in broker_redis.lrange(f"django_q:{cluster}:q", 0, -1)]


def test_an_unknown_queue_is_refused(broker_redis):
    with pytest.raises(UnknownQueueError, match="transcription"):
        enqueue("transcription", record, 1)

    assert queued(broker_redis) == []


def test_a_function_that_is_not_a_task_is_refused():
    with pytest.raises(TypeError, match="not a task"):
        enqueue(Queue.DEFAULT, print, 1)


@pytest.mark.parametrize("argument", [object(), {"id": 1}, 1.5, True])
def test_tasks_take_ids_only(argument):
    with pytest.raises(TypeError, match="ids only"):
        enqueue(Queue.DEFAULT, record, argument)


def test_nothing_is_pushed_before_commit_and_nothing_after_a_rollback(broker_redis):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue(Queue.DEFAULT, record, 7)
        assert queued(broker_redis) == []
        raise RuntimeError("the request failed")

    assert queued(broker_redis) == []


def test_a_commit_pushes_the_task_with_its_ids_and_request_id(broker_redis):
    bind_request_id("req-123")
    with transaction.atomic():
        enqueue(Queue.ANALYSIS, record, 7)

    [package] = queued(broker_redis)
    assert package["func"] == "tests.test_queues.record"
    assert package["args"] == (7,)
    assert package["kwargs"] == {"request_id": "req-123"}


@override_settings(QUEUE_ROUTES={**{q: DEFAULT_CLUSTER for q in Queue}, Queue.ASR: "asr"})
def test_a_routed_queue_lands_on_its_own_cluster_list(broker_redis):
    enqueue(Queue.ASR, record, 9)
    enqueue(Queue.DEFAULT, record, 10)

    assert [p["args"] for p in queued(broker_redis, "asr")] == [(9,)]
    assert [p["args"] for p in queued(broker_redis)] == [(10,)]


def test_a_broker_outage_at_commit_does_not_fail_the_caller(broker_redis, monkeypatch, caplog):
    from django_q.conf import Conf

    from otto.queues import reset_brokers

    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:1/0")
    reset_brokers()

    with transaction.atomic():
        enqueue(Queue.DEFAULT, record, 11)

    assert "could not enqueue tests.test_queues.record" in caplog.text


class CapturingTransport(sentry_sdk.transport.Transport):
    def __init__(self, options=None):
        super().__init__(options)
        self.events: list[dict] = []

    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.type == "event":
                self.events.append(item.payload.json)


def test_a_failing_task_is_reported_to_sentry_as_an_exception_with_its_ids():
    transport = CapturingTransport()
    sentry_sdk.init(dsn="https://key@sentry.invalid/1", transport=transport)
    try:
        with pytest.raises(RuntimeError):
            explode(42, request_id="req-9")
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()

    [event] = transport.events
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["tags"]["task"] == "tests.test_queues.explode"
    assert event["tags"]["call_id"] == "42"


marked: list[tuple] = []


def remember(*ids) -> None:
    marked.append(ids)


def refuse(*ids) -> None:
    raise RuntimeError("the database is down too")


@task(unqueued=remember)
def tracked(call_id: int) -> None:
    pass


@task(unqueued=refuse)
def tracked_badly(call_id: int) -> None:
    pass


@pytest.fixture
def broker_down(monkeypatch):
    from django_q.conf import Conf

    from otto.queues import reset_brokers

    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:1/0")
    reset_brokers()
    yield
    monkeypatch.undo()
    reset_brokers()


def test_a_failed_push_runs_the_tasks_unqueued_hook_with_its_ids(broker_down):
    marked.clear()

    with transaction.atomic():
        enqueue(Queue.DEFAULT, tracked, 12)
        enqueue(Queue.DEFAULT, record, 13)  # no hook: only logged

    assert marked == [(12,)]


def test_a_successful_push_runs_no_hook(broker_redis):
    marked.clear()

    with transaction.atomic():
        enqueue(Queue.DEFAULT, tracked, 14)

    assert marked == []
    assert [p["args"] for p in queued(broker_redis)] == [(14,)]


def test_a_failing_hook_is_logged_and_the_caller_carries_on(broker_down, caplog):
    with transaction.atomic():
        enqueue(Queue.DEFAULT, tracked_badly, 15)

    assert "could not record that tests.test_queues.tracked_badly(15,) was not enqueued" in (
        caplog.text
    )
