"""Otto's settings plus the benchmark's reference views (bench/urls.py) and its per-task
CPU meter (bench/apps.py). Never deployed."""

import os

from otto.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
INSTALLED_APPS = [*INSTALLED_APPS, "bench.apps.BenchConfig"]  # noqa: F405

# bench/webhook_ingest.py's "before" servers: every route through the full middleware.
if os.environ.get("BENCH_FULL_MIDDLEWARE"):
    WEBHOOK_PATH_PREFIXES = ()

if os.environ.get("BENCH_QUERIES"):
    # bench/api_latency.py: each response's query count, and plans of the slowest.
    MIDDLEWARE = ["bench.queries.QueryCountMiddleware", *MIDDLEWARE]  # noqa: F405
