"""The benchmarks' app (bench/settings.py only): worker CPU per task, and profiles.

With ``BENCH_TASK_STATS`` set to a directory, every qcluster worker appends one JSON line
per task it runs to ``tasks-<pid>.jsonl`` there: the task's function and the CPU time
(``time.process_time``: user + system of the worker process) and wall time between
django-q's ``pre_execute`` and ``post_execute_in_worker`` signals, so the figure is the
stage's own work, without the cluster's bookkeeping. With ``BENCH_PROFILE`` too, each task
also runs under one :mod:`cProfile` profiler (CPU time) per function and worker, written after every
task to ``<function>-<pid>.prof`` (workers are killed without ``atexit``). Profiling slows
the tasks down, so bench/pipeline.py profiles in a run of its own.
"""

from __future__ import annotations

import cProfile
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

from django.apps import AppConfig

_started: dict[str, tuple[float, float]] = {}
_profiles: dict[str, cProfile.Profile] = {}


def _name(task: dict[str, Any]) -> str:
    func = task.get("func")
    return func if isinstance(func, str) else getattr(func, "__qualname__", str(func))


def _before(sender: Any, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
    name = _name(task)
    if os.environ.get("BENCH_PROFILE"):
        # CPU time, like the figures: time spent waiting on PostgreSQL is not the stage's.
        _profiles.setdefault(name, cProfile.Profile(time.process_time)).enable()
    _started[task["id"]] = (time.process_time(), time.perf_counter())


def _memory() -> dict[str, int]:
    """The worker's resident memory now, and its proportional share (pages shared with
    the sentinel it was forked from count once across the processes sharing them)."""
    found = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Rss", "Pss"):
            found[f"{key.lower()}_kib"] = int(value.split()[0])
    return found


def _after(sender: Any, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
    cpu, wall = _started.pop(task["id"], (None, None))
    name = _name(task)
    profile = _profiles.get(name)
    if profile is not None:
        profile.disable()
    if cpu is None or wall is None:
        return
    directory = write_task_line(name, cpu, wall)
    if profile is not None:
        profile.dump_stats(directory / f"{name}-{os.getpid()}.prof")


def write_task_line(name: str, cpu: float, wall: float) -> Path:
    """Append one task's line to this worker's file (also bench/celery_chain.py's)."""
    line = {
        "func": name,
        "cpu_ms": (time.process_time() - cpu) * 1000,
        "wall_ms": (time.perf_counter() - wall) * 1000,
        # django-q recycles a worker whose peak RSS reaches Q_CLUSTER["max_rss"] (KiB).
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        **_memory(),
    }
    directory = Path(os.environ["BENCH_TASK_STATS"])
    with (directory / f"tasks-{os.getpid()}.jsonl").open("a") as out:
        out.write(json.dumps(line) + "\n")
    return directory


class BenchConfig(AppConfig):
    name = "bench"

    def ready(self) -> None:
        if os.environ.get("BENCH_CELERY_BROKER"):
            # bench/pipeline.py's comparison: stages scheduled by a Celery chain instead.
            from bench import celery_chain

            celery_chain.install()
            return
        if not os.environ.get("BENCH_TASK_STATS"):
            return
        from django_q.signals import post_execute_in_worker, pre_execute

        pre_execute.connect(_before, dispatch_uid="bench-task-start")
        post_execute_in_worker.connect(_after, dispatch_uid="bench-task-end")
