"""The single list of queue names, their routing to clusters, and ``enqueue``.

django-q2 accepts any cluster name and lets tasks pile up on a list no cluster reads,
so every push goes through :func:`enqueue`, which only knows the names in :class:`Queue`.

A *queue* is a logical stage of the pipeline. A *cluster* is a set of qcluster processes
reading one broker list. ``Q_ROUTES`` (settings ``QUEUE_ROUTES``) maps queues onto
clusters: a small deployment runs every queue on the default cluster, a large one routes
``asr`` and ``analysis`` to clusters of their own (``Q_CLUSTER_NAME=asr manage.py qcluster``).

This module must stay importable from settings, so django-q2 is imported lazily.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from django.conf import settings
from django.db import transaction

from otto.logging import bind_request_id, get_request_id, new_request_id

if TYPE_CHECKING:
    from django_q.brokers import Broker

logger = logging.getLogger(__name__)

DEFAULT_CLUSTER = "default"


class Queue(enum.StrEnum):
    DEFAULT = "default"
    ASR = "asr"
    ANALYSIS = "analysis"
    FOLLOWUPS = "followups"
    INDEXING = "indexing"
    UWC = "uwc"
    SHUNYA = "shunya"


class UnknownQueueError(ValueError):
    pass


def check_queue(queue: str) -> Queue:
    try:
        return Queue(queue)
    except ValueError:
        raise UnknownQueueError(
            f"Unknown queue {queue!r}; known queues: {', '.join(Queue)}"
        ) from None


def cluster_for(queue: str) -> str:
    """The cluster whose broker list serves ``queue``."""
    return settings.QUEUE_ROUTES[check_queue(queue)]


def clusters() -> list[str]:
    """Every cluster some queue is routed to, the default one first."""
    routed = set(settings.QUEUE_ROUTES.values())
    return [DEFAULT_CLUSTER, *sorted(routed - {DEFAULT_CLUSTER})]


# One broker (one Redis connection pool) per cluster and process: opening a connection per
# push halves ingest throughput (DESIGN.md §3). Keyed by pid so a forked worker never
# shares its parent's sockets.
_brokers: dict[tuple[int, str], Broker] = {}


def get_broker(cluster: str) -> Broker:
    from django_q.brokers import get_broker as make_broker

    key = (os.getpid(), cluster)
    broker = _brokers.get(key)
    if broker is None:
        broker = _brokers[key] = make_broker(cluster)
    return broker


def reset_brokers() -> None:
    """Forget cached brokers, e.g. after the broker settings change in a test."""
    _brokers.clear()


# --- tasks -----------------------------------------------------------------------------

TASKS: dict[str, Callable[..., Any]] = {}
# Per task path: what records, durably, that a push of that task failed (see task()).
UNQUEUED: dict[str, Callable[..., None]] = {}
_ID_TYPES = (int, str, uuid.UUID)


@overload
def task[F: Callable[..., Any]](func: F, *, unqueued: Callable[..., None] | None = None) -> F: ...


@overload
def task[F: Callable[..., Any]](
    func: None = None, *, unqueued: Callable[..., None] | None = None
) -> Callable[[F], F]: ...


def task(
    func: Callable[..., Any] | None = None, *, unqueued: Callable[..., None] | None = None
) -> Callable[..., Any]:
    """Mark ``func`` as a task that :func:`enqueue` may push.

    The wrapper binds the request id of the code that enqueued it, so one id follows a
    webhook from the HTTP request into every stage it triggers, and reports an exception
    to Sentry as a real exception event (sentry-sdk has no django-q integration) before
    django-q records the failure.

    ``unqueued(*ids)`` (``@task(unqueued=...)``) runs when a push of the task fails, e.g.
    with the broker down: it marks the row the task was for, so the reaper enqueues it on
    its next run instead of after the grace it gives tasks that may still be queued.
    """
    if func is None:
        return functools.partial(task, unqueued=unqueued)
    path = f"{func.__module__}.{func.__qualname__}"
    if unqueued is not None:
        UNQUEUED[path] = unqueued

    @functools.wraps(func)
    def run(*args: Any, request_id: str | None = None) -> Any:
        import sentry_sdk

        token = bind_request_id(request_id or new_request_id())
        try:
            with sentry_sdk.isolation_scope() as scope:
                scope.set_tag("task", path)
                scope.set_context("task", {"args": [str(arg) for arg in args]})
                for arg_name, value in zip(_arg_names(func), args, strict=False):
                    scope.set_tag(arg_name, str(value))
                try:
                    return func(*args)
                except Exception:
                    sentry_sdk.capture_exception()
                    logger.exception("task %s failed", path)
                    raise
        finally:
            bind_request_id(None, token)

    run.task_path = path  # type: ignore[attr-defined]
    TASKS[path] = run
    return run


def _arg_names(func: Callable[..., Any]) -> list[str]:
    code = func.__code__
    return list(code.co_varnames[: code.co_argcount])


def enqueue(queue: str, func: Callable[..., Any], *ids: int | str | uuid.UUID) -> None:
    """Push ``func(*ids)`` onto ``queue`` once the current transaction commits.

    Deferring to commit means a worker never sees a row that is not there yet, and a
    rollback leaves nothing in the broker. Tasks take ids only: a row is always reloaded
    by the worker, never pickled. If the push itself fails (broker down), the error is
    logged, the task's ``unqueued`` hook marks its row, and the caller carries on:
    PostgreSQL is the source of truth, and the reaper re-enqueues whatever was left behind.
    """
    queue = check_queue(queue)
    path = getattr(func, "task_path", None)
    if path is None:
        raise TypeError(f"{func!r} is not a task; decorate it with @otto.queues.task")
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, _ID_TYPES):
            raise TypeError(f"tasks take ids only, got {type(value).__name__}")
    request_id = get_request_id()
    name = task_name(func, path, ids)
    transaction.on_commit(functools.partial(_push, queue, path, ids, request_id, name=name))


def task_name(func: Callable[..., Any], path: str, ids: tuple[Any, ...]) -> str:
    """The django-q task name: ``call 42 · calls.tasks.transcribe_call`` when the task's
    first argument is a call id, so the admin's Failed tasks (searchable by name) lead to
    the call; otherwise the task's path and a short unique suffix."""
    names = _arg_names(getattr(func, "__wrapped__", func))
    if ids and names and names[0] == "call_id":
        return f"call {ids[0]} · {path}"[:100]
    return f"{path} · {uuid.uuid4().hex[:8]}"[:100]


_CALL_TASK_NAME = re.compile(r"call (\d+) · ")


def task_call_id(name: str | None) -> int | None:
    """The call a django-q task was about, read back from its :func:`task_name`."""
    match = _CALL_TASK_NAME.match(name or "")
    return int(match.group(1)) if match else None


def _push(
    queue: Queue,
    path: str,
    ids: tuple[Any, ...],
    request_id: str | None,
    name: str | None = None,
) -> None:
    from django_q.tasks import async_task

    cluster = cluster_for(queue)
    try:
        async_task(
            path,
            *(str(value) if isinstance(value, uuid.UUID) else value for value in ids),
            request_id=request_id,
            cluster=cluster,
            broker=get_broker(cluster),
            group=path,
            task_name=name,
        )
    except Exception:
        logger.exception("could not enqueue %s on queue %s (cluster %s)", path, queue, cluster)
        _record_unqueued(path, ids)


def _record_unqueued(path: str, ids: tuple[Any, ...]) -> None:
    # Only on failure, so the happy path of ingest costs no extra query.
    record = UNQUEUED.get(path)
    if record is None:
        return
    try:
        record(*ids)
    except Exception:
        # The database may be down too; the reaper's grace still finds the row later.
        logger.exception("could not record that %s%r was not enqueued", path, ids)
