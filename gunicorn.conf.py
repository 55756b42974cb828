"""gunicorn reads this file from the working directory (the Procfile's ``web``).

With ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its metrics to a file there and
``GET /metrics`` adds them up (docs/operations.md). A worker that exits is marked dead so
its live gauges are dropped; its counters stay counted, as Prometheus expects.
"""

import os
from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
