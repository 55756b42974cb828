"""Schedules are code: one registry, synced into django-q2's ``Schedule`` table.

Each app declares its jobs in a ``schedules.py`` module with :func:`register`. Every
row that :func:`sync` writes runs :func:`fire` with the job's name, and ``fire`` looks
the job up here and enqueues it on its queue. So the table holds no arguments worth
editing, routing is decided when the job runs (a changed ``Q_ROUTES`` needs no re-sync),
and the default cluster's scheduler is the only one that needs to see the rows.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

from otto.queues import Queue, check_queue, enqueue, task

logger = logging.getLogger(__name__)

FIRE = "otto.schedules.fire"
# django-q2's Schedule.name; a longer name would be cut and no longer find its job.
NAME_MAX_LENGTH = 100


@dataclass(frozen=True)
class Job:
    name: str
    func: Callable[..., Any]
    queue: Queue
    minutes: int
    args: tuple[int | str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        check_job(self)


def check_job(job: Job) -> None:
    """Refuse a job that could poison the ``Schedule`` table.

    django-q2's scheduler handles every due row in one transaction: a row whose arguments
    do not parse or cannot be sent stops every schedule, not only its own. So a job's
    arguments are ids only (as :func:`otto.queues.enqueue` takes them) and its name fits
    the row; and its function is a task, or :func:`fire` would fail at every run.
    """
    if not isinstance(job.name, str) or not 0 < len(job.name) <= NAME_MAX_LENGTH:
        raise ValueError(f"schedule name {job.name!r} must be 1 to {NAME_MAX_LENGTH} characters")
    check_queue(job.queue)
    if isinstance(job.minutes, bool) or not isinstance(job.minutes, int) or job.minutes < 1:
        raise ValueError(f"schedule {job.name!r} must run at most once a minute")
    if getattr(job.func, "task_path", None) is None:
        raise ValueError(f"schedule {job.name!r}: {job.func!r} is not an @otto.queues.task")
    if not isinstance(job.args, tuple):
        raise ValueError(f"schedule {job.name!r}: args must be a tuple of ids")
    for value in job.args:
        if isinstance(value, bool) or not isinstance(value, int | str | uuid.UUID):
            raise ValueError(
                f"schedule {job.name!r}: args must be ids (int, str, UUID), got {value!r}"
            )


_registry: dict[str, Job] = {}


def register(job: Job) -> Job:
    existing = _registry.get(job.name)
    if existing is not None and existing != job:
        raise ValueError(f"schedule {job.name!r} is registered twice with different settings")
    _registry[job.name] = job
    return job


def registry() -> dict[str, Job]:
    autodiscover_modules("schedules")
    return dict(_registry)


@task
def fire(name: str) -> None:
    job = registry().get(name)
    if job is None:
        logger.warning("schedule %s is not in the registry; run sync_schedules", name)
        return
    enqueue(job.queue, job.func, *job.args)


def _row(job: Job) -> dict[str, Any]:
    """The ``Schedule`` fields :func:`sync` writes for ``job``."""
    return {
        "func": FIRE,
        "args": repr((job.name,)),
        "kwargs": "",
        "hook": None,
        "cluster": None,
        "schedule_type": "I",
        "minutes": job.minutes,
    }


def unsynced() -> list[str]:
    """Names of the jobs whose row is missing or differs, and of stale rows: empty when
    the ``Schedule`` table matches the registry (``manage.py preflight``)."""
    from django_q.models import Schedule

    jobs = registry()
    rows = {row.name: row for row in Schedule.objects.filter(func=FIRE)}
    out = [
        name
        for name, job in jobs.items()
        if name not in rows
        or any(getattr(rows[name], key) != value for key, value in _row(job).items())
    ]
    return sorted(out + [name for name in rows if name not in jobs])


@transaction.atomic
def sync(schedule_model: Any = None) -> dict[str, int]:
    """Make the ``Schedule`` table match the registry. Safe to run any number of times.

    A row that ops paused in the admin (``repeats=0``) stays paused.
    """
    if schedule_model is None:
        from django_q.models import Schedule

        schedule_model = Schedule
    jobs = registry()
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    for job in jobs.values():
        wanted = _row(job)
        row = schedule_model.objects.select_for_update().filter(name=job.name).first()
        if row is None:
            schedule_model.objects.create(
                name=job.name, repeats=-1, next_run=timezone.now(), **wanted
            )
            counts["created"] += 1
            continue
        changed = [key for key, value in wanted.items() if getattr(row, key) != value]
        if not changed:
            counts["unchanged"] += 1
            continue
        for key in changed:
            setattr(row, key, wanted[key])
        row.save(update_fields=changed)
        counts["updated"] += 1
    stale = schedule_model.objects.filter(func=FIRE).exclude(name__in=list(jobs))
    counts["deleted"] = stale.delete()[0]
    return counts


def _register_core() -> None:
    from otto.tasks import (
        heartbeat,
        prune_task_results,
        purge_idempotency_keys,
        purge_retention,
    )

    for queue in Queue:
        register(Job(f"heartbeat.{queue}", heartbeat, queue, minutes=1, args=(queue.value,)))
    register(Job("prune-task-results", prune_task_results, Queue.DEFAULT, minutes=24 * 60))
    register(Job("purge-idempotency-keys", purge_idempotency_keys, Queue.DEFAULT, minutes=24 * 60))
    # Housekeeping, off the queue that ingests calls and webhooks (docs/retention.md).
    register(Job("purge-retention", purge_retention, Queue.INDEXING, minutes=24 * 60))


_register_core()
