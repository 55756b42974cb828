"""After a broker outage: work whose push failed is marked, and the reapers enqueue it on
their next run instead of after the grace they give tasks that may still be queued.

The full measurement (real Redis, a real qcluster and scheduler, timed from the broker's
return) is in test_reliability.py.
"""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from django_q.conf import Conf
from django_q.signing import SignedPackage

from calls import sweeps
from calls import tasks as call_tasks
from calls.models import Call
from integrations import services
from integrations.models import WebhookEvent
from otto.models import Company
from otto.queues import Queue, enqueue, reset_brokers
from tests.api.factories import CallFactory, ContactFactory
from tests.integrations.fixtures import CLERK_SECRET, load, post_clerk

CLOSED_PORT = "redis://127.0.0.1:1/0"
Status = WebhookEvent.Status
Stage = Call.Stage


@pytest.fixture
def broker_down(monkeypatch):
    """Redis unreachable for this process; ``up()`` brings it back."""
    healthy = Conf.REDIS

    def up() -> None:
        monkeypatch.setattr(Conf, "REDIS", healthy)
        reset_brokers()

    monkeypatch.setattr(Conf, "REDIS", CLOSED_PORT)
    reset_brokers()
    yield up
    up()


def pushed(broker_redis) -> list[tuple[str, tuple]]:
    raw = broker_redis.lrange("django_q:default:q", 0, -1)
    return [(p["func"], p["args"]) for p in map(SignedPackage.loads, raw)]


def deliver_clerk(client, django_capture_on_commit_callbacks) -> WebhookEvent:
    """A signed delivery through the real view, its on-commit push run for real."""
    with django_capture_on_commit_callbacks(execute=True):
        response = post_clerk(client, load("clerk", "organization.created"))
    assert response.status_code == 200
    return WebhookEvent.objects.get(pk=response.json()["id"])


# --- webhook events ------------------------------------------------------------------------


@pytest.fixture
def _clerk(settings):
    settings.CLERK_WEBHOOK_SECRET = CLERK_SECRET


@pytest.mark.usefixtures("_clerk")
def test_a_delivery_whose_push_fails_is_marked_and_reaped_at_once(
    db, client, broker_down, broker_redis, django_capture_on_commit_callbacks
):
    # given a delivery stored while the broker is down
    event = deliver_clerk(client, django_capture_on_commit_callbacks)
    assert (event.status, event.enqueue_failed_at is not None) == (Status.RECEIVED, True)

    # when the broker is back and the reaper runs, well inside the grace
    broker_down()
    with django_capture_on_commit_callbacks(execute=True):
        outcome = services.reap_events()

    # then its task is in Redis, and the marker is cleared
    assert outcome["enqueued"] == 1
    assert pushed(broker_redis) == [("integrations.tasks.process_webhook_event", (event.pk,))]
    event.refresh_from_db()
    assert event.enqueue_failed_at is None
    # and a run a minute later leaves it to the task already queued
    assert services.reap_events(now=timezone.now() + datetime.timedelta(minutes=1)) == {
        "failed": 0,
        "reset": 0,
        "enqueued": 0,
    }


@pytest.mark.usefixtures("_clerk")
def test_a_delivery_whose_push_succeeded_keeps_the_grace(
    db, client, broker_redis, django_capture_on_commit_callbacks
):
    event = deliver_clerk(client, django_capture_on_commit_callbacks)
    assert event.enqueue_failed_at is None
    assert len(pushed(broker_redis)) == 1

    # its task may still be waiting in the queue: the reaper does not duplicate it yet
    assert services.reap_events()["enqueued"] == 0
    later = timezone.now() + services.RECEIVED_GRACE + datetime.timedelta(seconds=1)
    assert services.reap_events(now=later)["enqueued"] == 1


@pytest.mark.usefixtures("_clerk")
def test_a_reaped_push_that_fails_again_marks_the_event_again(
    db, client, broker_down, django_capture_on_commit_callbacks
):
    event = deliver_clerk(client, django_capture_on_commit_callbacks)

    # the broker is still down when the reaper runs
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reap_events()["enqueued"] == 1

    event.refresh_from_db()
    assert event.enqueue_failed_at is not None


@pytest.mark.usefixtures("_clerk")
def test_a_processed_event_is_not_marked_by_a_late_failure(
    db, client, django_capture_on_commit_callbacks
):
    event = deliver_clerk(client, django_capture_on_commit_callbacks)
    WebhookEvent.objects.filter(pk=event.pk).update(status=Status.PROCESSED)

    services.mark_unqueued(event.pk)

    event.refresh_from_db()
    assert event.enqueue_failed_at is None
    assert services.reap_events()["enqueued"] == 0
    assert not Company.objects.exists()


# --- calls -----------------------------------------------------------------------------


@pytest.fixture
def received_call(acme) -> Call:
    return CallFactory(company=acme, contact=ContactFactory(company=acme), stage=Stage.RECEIVED)


def test_a_call_whose_push_fails_is_enqueued_on_the_reapers_next_run(
    received_call, broker_down, broker_redis, django_capture_on_commit_callbacks
):
    assert received_call.next_attempt_at is None
    # given ingest's push fails
    with django_capture_on_commit_callbacks(execute=True):
        enqueue(Queue.DEFAULT, call_tasks.ingest_call, received_call.pk)
    received_call.refresh_from_db()
    assert received_call.next_attempt_at is not None

    # when the broker is back and the reaper runs, well inside the grace
    broker_down()
    with django_capture_on_commit_callbacks(execute=True):
        outcome = sweeps.retry_due_calls()

    assert outcome == {"failed": 0, "enqueued": 1, "reclaimed": 0}
    assert pushed(broker_redis) == [("calls.tasks.ingest_call", (received_call.pk,))]
    received_call.refresh_from_db()
    assert (received_call.stage, received_call.attempts) == (Stage.RECEIVED, 0)


def test_a_call_held_by_a_worker_is_left_alone_by_a_failed_push(received_call, broker_down):
    lease = timezone.now() + datetime.timedelta(minutes=15)
    Call.objects.filter(pk=received_call.pk).update(next_attempt_at=lease)

    sweeps.mark_unqueued(received_call.pk)

    received_call.refresh_from_db()
    assert received_call.next_attempt_at == lease
    assert sweeps.retry_due_calls()["enqueued"] == 0


def test_a_failed_push_of_a_call_that_moved_on_marks_nothing(received_call):
    Call.objects.filter(pk=received_call.pk).update(stage=Stage.DONE)

    sweeps.mark_unqueued(received_call.pk)

    received_call.refresh_from_db()
    assert received_call.next_attempt_at is None
