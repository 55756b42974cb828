"""The comparison target of bench/pipeline.py (DESIGN.md §8): Otto's pipeline stages
scheduled by a Celery ``chain()`` instead of Django-Q.

    celery -A bench.celery_chain worker --pool prefork --concurrency N

Active only with ``BENCH_CELERY_BROKER`` set (bench/apps.py then calls :func:`install`),
in the bench's second gunicorn and in the Celery worker; bench/settings.py only, never
deployed. Celery is a bench-only extra (``pip install -e '.[bench]'``).

Every call runs the same Otto task functions the Django-Q cluster runs, in the same order
and with the same arguments (the wrappers of :func:`otto.queues.task`: request id, Sentry
scope; then the services with their claims, stage moves and history rows), one Celery
task each::

    chain(process_webhook_event(event_id) → ingest_call → transcribe_call → index_call
          → analyze_call → apply_call)

What changes is the scheduling. Each stage hands the call on by :func:`otto.queues.enqueue`
on commit; :func:`install` replaces its push (``otto.queues._push``):

- the push of ``process_webhook_event`` (the webhook view's, in gunicorn) starts the
  call's chain on the Celery broker;
- the push of the chain's next stage is not sent anywhere: the chain runs it, with the id
  the stage pushed (a webhook event's push of ``ingest_call`` names the call). A stage that
  hands on nothing where Otto would (its claim failed, the call went to ``failed``) ends
  the chain, as it leaves the call waiting on Django-Q;
- any other push (``geocode_appointment`` after apply) is sent as a Celery task of its own.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery, chain, signals

# The stages in order, and what each hands on (pushes) that the chain then runs.
CHAIN = (
    "integrations.tasks.process_webhook_event",
    "calls.tasks.ingest_call",
    "calls.tasks.transcribe_call",
    "calls.tasks.index_call",
    "analysis.tasks.analyze_call",
    "appointments.tasks.apply_call",
)
HANDS_ON = {
    "integrations.tasks.process_webhook_event": "calls.tasks.ingest_call",
    "calls.tasks.ingest_call": "calls.tasks.transcribe_call",
    "calls.tasks.transcribe_call": "analysis.tasks.analyze_call",
    "analysis.tasks.analyze_call": "appointments.tasks.apply_call",
}

app = Celery("otto_bench", broker=os.environ.get("BENCH_CELERY_BROKER", "memory://"))
app.conf.update(
    # The chain passes each stage's return value to the next in its message: no result
    # backend, as Otto's stages return nothing anyone reads.
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
if reuse := os.environ.get("BENCH_CELERY_DB_REUSE_MAX"):
    # Celery's Django fixup closes the database connection before and after every task
    # unless told to keep it for this many: set, the worker keeps its connections as
    # Django-Q's do (CONN_MAX_AGE).
    app.conf.CELERY_DB_REUSE_MAX = int(reuse)

# What the running stage pushed: (task path, ids), in this worker process.
_handed: list[tuple[str, tuple[Any, ...]]] = []
_started: dict[str, tuple[float, float]] = {}


class NotHandedOn(Exception):
    """The stage did not hand the call on: the chain stops here."""


def install() -> None:
    from otto import queues

    queues._push = push  # type: ignore[assignment]  # noqa: SLF001 -- the bench's seam


def push(
    queue: Any, path: str, ids: tuple[Any, ...], request_id: str | None, name: str | None = None
) -> None:
    """Stands in for :func:`otto.queues._push` (see the module's docstring)."""
    if path == CHAIN[0]:
        chain(
            run_stage.si(ids[0], CHAIN[0], request_id),
            *(run_stage.s(path, request_id) for path in CHAIN[1:]),
        ).apply_async()
    elif path in CHAIN:
        _handed.append((path, ids))
    else:
        run_task.delay(path, list(ids), request_id)


def _task(path: str) -> Any:
    from django.utils.module_loading import import_string

    return import_string(path)


@app.task(name="otto_bench.run_stage")
def run_stage(object_id: int, path: str, request_id: str | None) -> int:
    """Run one stage of the call's chain; the id the next stage takes."""
    _handed.clear()
    _task(path)(object_id, request_id=request_id)
    wanted = HANDS_ON.get(path)
    if wanted is None:
        return object_id
    for handed, ids in _handed:
        if handed == wanted:
            return int(ids[0])
    raise NotHandedOn(f"{path}({object_id}) did not hand on to {wanted}")


@app.task(name="otto_bench.run_task")
def run_task(path: str, ids: list[Any], request_id: str | None) -> None:
    _task(path)(*ids, request_id=request_id)


# Worker CPU per task, in the same files and format as the Django-Q workers' (bench/apps.py).
@signals.task_prerun.connect
def _before(task_id: str, task: Any, args: Any = (), **kwargs: Any) -> None:
    _started[task_id] = (time.process_time(), time.perf_counter())


@signals.task_postrun.connect
def _after(task_id: str, task: Any, args: Any = (), **kwargs: Any) -> None:
    started = _started.pop(task_id, None)
    if started is None or not os.environ.get("BENCH_TASK_STATS"):
        return
    from bench.apps import write_task_line

    # run_stage(id, path, …) and run_task(path, …): name the Otto task, as Django-Q's do.
    name = args[1] if task.name == run_stage.name else args[0]
    write_task_line(name, *started)


@signals.worker_ready.connect
def _ready(**kwargs: Any) -> None:
    if directory := os.environ.get("BENCH_TASK_STATS"):
        with open(os.path.join(directory, "celery-ready"), "w"):
            pass
