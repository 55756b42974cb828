"""Real qcluster subprocesses on Redis: tasks run, schedules fire, health sees them."""

import pytest
from django.db import transaction
from django.test import override_settings

from otto.models import QueueHeartbeat
from otto.queues import DEFAULT_CLUSTER, Queue, enqueue
from otto.schedules import sync
from otto.tasks import heartbeat
from tests.conftest import wait_for

pytestmark = pytest.mark.cluster


def test_a_task_runs_end_to_end_in_a_real_cluster_and_writes_to_the_database(start_qcluster):
    start_qcluster()

    with transaction.atomic():
        enqueue(Queue.INDEXING, heartbeat, Queue.INDEXING.value)

    beat = wait_for(lambda: QueueHeartbeat.objects.filter(queue="indexing").first())
    assert beat.cluster == DEFAULT_CLUSTER


def test_health_workers_is_503_without_a_cluster_and_200_with_one(client, start_qcluster):
    response = client.get("/health/workers")
    assert response.status_code == 503
    assert response.json()["clusters"]["default"]["alive"] is False
    assert response.json()["queues"]["asr"]["status"] == "down"

    start_qcluster()

    response = client.get("/health/workers")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["clusters"]["default"]["alive"] is True
    assert set(body["queues"]) == {queue.value for queue in Queue}
    assert {q["status"] for q in body["queues"].values()} <= {"ok", "starting"}


ROUTES = {**{queue: DEFAULT_CLUSTER for queue in Queue}, Queue.ASR: "asr"}


@override_settings(QUEUE_ROUTES=ROUTES)
def test_a_routed_queue_without_its_cluster_makes_health_workers_503(client, start_qcluster):
    start_qcluster(Q_ROUTES="asr=asr")

    body = client.get("/health/workers").json()

    assert body["queues"]["asr"] == {
        "cluster": "asr",
        "status": "down",
        "heartbeat_age_seconds": None,
        "depth": 0,
    }
    assert body["queues"]["analysis"]["status"] in ("ok", "starting")
    assert client.get("/health/workers").status_code == 503


@override_settings(QUEUE_ROUTES=ROUTES)
def test_a_routed_queue_is_served_by_its_own_cluster(client, start_qcluster):
    start_qcluster(Q_ROUTES="asr=asr")
    start_qcluster("asr", Q_ROUTES="asr=asr")

    with transaction.atomic():
        enqueue(Queue.ASR, heartbeat, Queue.ASR.value)

    beat = wait_for(lambda: QueueHeartbeat.objects.filter(queue="asr").first())
    assert beat.cluster == "asr"
    assert client.get("/health/workers").status_code == 200


def test_the_scheduler_fires_every_queue_heartbeat(client, start_qcluster):
    sync()
    start_qcluster()

    # django-q2's scheduler wakes every 30 s.
    wait_for(lambda: QueueHeartbeat.objects.count() == len(Queue), timeout=75, interval=1)

    body = client.get("/health/workers").json()
    assert {q["status"] for q in body["queues"].values()} == {"ok"}
    assert all(q["heartbeat_age_seconds"] < 75 for q in body["queues"].values())
