"""gunicorn reads this file from the working directory: ``gunicorn otto.wsgi``, the fallback
web server (the Procfile's ``web`` is granian, otto/web.py, with the same sizes) and the
benchmarks' gunicorn configurations.

Workers: ``WEB_CONCURRENCY`` processes (2) of ``WEB_THREADS`` threads (4) each, with HTTP
keep-alive. A thread waiting on PostgreSQL or Redis leaves the CPU to the others, and a
client (a provider's webhook sender, the platform's router) keeps its connection between
requests. Each process borrows its database connections from a pool of ``WEB_THREADS``
(``DATABASE_POOL_SIZE``, PostgreSQL only). docs/performance.md has what each bought;
command-line flags still win (``-k sync``).

With ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its metrics to a file there and
``GET /metrics`` adds them up (docs/operations.md). A worker that exits is marked dead so
its live gauges are dropped; its counters stay counted, as Prometheus expects.
"""

import os
from typing import Any

workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS") or 4)
# Seconds an idle client connection stays open.
keepalive = 5
# Read by otto/settings.py in each worker (forked after this file runs).
os.environ.setdefault("DATABASE_POOL_SIZE", str(threads))
os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT", "25")  # otto/web.py's


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
