"""Liveness, readiness and worker health. Public, unauthenticated and cheap.

Failures are reported by check name and exception class only: these endpoints face the
internet, and an error message can name internal hosts. The full error goes to the log.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from otto.brokers import presence_key
from otto.models import QueueHeartbeat
from otto.queues import Queue, cluster_for, clusters, get_broker

logger = logging.getLogger(__name__)

# Heartbeats are scheduled every minute; three missed ones mean the queue is not served.
HEARTBEAT_STALE_AFTER = 180


@require_GET
@never_cache
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def _check_broker() -> dict[str, Any]:
    broker = get_broker(clusters()[0])
    broker.ping()
    return {"depth": broker.queue_size()}


def _check_cache() -> dict[str, Any]:
    key = f"otto:health:{time.monotonic_ns()}"
    cache.set(key, "1", 10)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was just written")
    cache.delete(key)
    return {}


_migrations_applied = False


def _check_migrations() -> dict[str, Any]:
    # Once applied, migrations stay applied: only the first success is paid for.
    global _migrations_applied
    if not _migrations_applied:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            raise RuntimeError(f"{len(pending)} migrations not applied")
        _migrations_applied = True
    return {}


READINESS_CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": _check_database,
    "broker": _check_broker,
    "cache": _check_cache,
    "migrations": _check_migrations,
}


def _run(name: str, check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:
        logger.warning("health check %s failed", name, exc_info=True)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **detail}


@require_GET
@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    """Can this instance serve traffic? Worker state is left out on purpose."""
    checks = {name: _run(name, check) for name, check in READINESS_CHECKS.items()}
    healthy = all(result["ok"] for result in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


def _cluster_state(name: str, now: float) -> dict[str, Any]:
    state: dict[str, Any] = {"alive": False, "depth": None}
    try:
        presence = cache.get(presence_key(name))
        state["depth"] = get_broker(name).queue_size()
    except Exception as exc:
        logger.warning("could not read the state of cluster %s", name, exc_info=True)
        state["error"] = type(exc).__name__
        return state
    if presence:
        state.update(
            alive=True,
            host=presence["host"],
            pid=presence["pid"],
            up_seconds=round(now - presence["since"]),
        )
    return state


def _queue_status(cluster: dict[str, Any], heartbeat_age: float | None) -> str:
    if not cluster["alive"]:
        return "down"
    if heartbeat_age is not None and heartbeat_age <= HEARTBEAT_STALE_AFTER:
        return "ok"
    # A cluster that just started has not had its first heartbeat scheduled yet.
    if cluster["up_seconds"] <= HEARTBEAT_STALE_AFTER:
        return "starting"
    return "stale"


def worker_state() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Each cluster's presence and depth, and each queue's cluster, status and heartbeat
    age; read by ``/health/workers`` and ``manage.py preflight``."""
    now = time.time()
    cluster_states = {name: _cluster_state(name, now) for name in clusters()}
    beats = {beat.queue: beat for beat in QueueHeartbeat.objects.all()}
    queues = {}
    for queue in Queue:
        cluster = cluster_for(queue)
        beat = beats.get(queue)
        age = (timezone.now() - beat.beat_at).total_seconds() if beat else None
        queues[queue.value] = {
            "cluster": cluster,
            "status": _queue_status(cluster_states[cluster], age),
            "heartbeat_age_seconds": None if age is None else round(age, 1),
            # Queues routed to one cluster share its broker list, hence its depth.
            "depth": cluster_states[cluster]["depth"],
        }
    return cluster_states, queues


@require_GET
@never_cache
def workers(request: HttpRequest) -> JsonResponse:
    """Which clusters are alive, and is every queue being served? 503 if one is not."""
    cluster_states, queues = worker_state()
    healthy = all(q["status"] in ("ok", "starting") for q in queues.values()) and not any(
        "error" in state for state in cluster_states.values()
    )
    return JsonResponse(
        {
            "status": "ok" if healthy else "unavailable",
            "clusters": cluster_states,
            "queues": queues,
        },
        status=200 if healthy else 503,
    )
