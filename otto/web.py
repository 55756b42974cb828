"""The web process: ``python -m otto.web`` serves ``otto.wsgi`` with granian (the Procfile's
``web``).

granian is an HTTP server written in Rust: it parses HTTP and keeps connections outside
Python, and hands each request to Django's WSGI handler (the webhooks' lean middleware
chain, otto/handlers.py) on one of the worker's Python threads. docs/performance.md has
what it bought over gunicorn.

- ``WEB_CONCURRENCY`` worker processes (2), each running the app on ``WEB_THREADS``
  threads (4); a worker that dies is started again.
- HTTP/1.1 keep-alive: a client (a provider's webhook sender, the platform's router) keeps
  its connection between requests.
- Each worker borrows its database connections from a pool of ``WEB_THREADS``
  (``DATABASE_POOL_SIZE``, PostgreSQL only), set here before the workers load Django, and
  PostgreSQL cancels any statement of theirs that runs over 25 s
  (``DATABASE_STATEMENT_TIMEOUT``).
- Binds ``--host`` (``0.0.0.0``) and ``--port`` (``PORT``, 8080).
- On SIGTERM granian stops its workers gracefully; one that has not exited after
  ``WEB_GRACEFUL_TIMEOUT`` seconds (30) is killed.

No request is cut short while it runs (granian has no per-request timeout, and neither had
gunicorn's gthread workers, whose ``timeout`` only restarts a worker whose main loop
hangs): what bounds a request is its blocking calls' own limits (docs/operations.md,
"The web process").

With ``PROMETHEUS_MULTIPROC_DIR`` set, each worker writes its metrics to a file there and
``GET /metrics`` adds them up; a worker marks the live gauges of processes that are gone
dead when it starts (:func:`otto.metrics.forget_dead_processes`), which covers a worker
granian started again.

This module imports no Django: each worker loads it (``otto.wsgi``) after granian starts
the worker, so no database connection or pool crosses a fork.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from granian import Granian
from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels

APP = "otto.wsgi:granian_application"
# Seconds a web request's SQL statement may run (DATABASE_STATEMENT_TIMEOUT): under the
# 30 s most platforms' routers give a request, so the client gets Otto's error, not theirs.
WEB_STATEMENT_TIMEOUT = 25


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name) or str(default)
    try:
        number = int(value)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {value!r}") from None
    if number < 1:
        raise SystemExit(f"{name} must be at least 1, not {number}")
    return number


def server(host: str, port: int) -> Any:
    """The configured server, not started (``.serve()``; granian picks its server class at
    import, which mypy cannot follow)."""
    workers = _env_int("WEB_CONCURRENCY", 2)
    threads = _env_int("WEB_THREADS", 4)
    # Read by otto/settings.py in each worker.
    os.environ.setdefault("DATABASE_POOL_SIZE", str(threads))
    os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT", str(WEB_STATEMENT_TIMEOUT))
    return Granian(
        APP,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        http1_settings=HTTP1Settings(keep_alive=True),
        websockets=False,
        respawn_failed_workers=True,
        workers_kill_timeout=_env_int("WEB_GRACEFUL_TIMEOUT", 30),
        # granian's own log (startup, workers); Django logs as LOG_LEVEL says.
        log_level=LogLevels.warning,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m otto.web", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - the platform's router
    parser.add_argument("--port", type=int, default=_env_int("PORT", 8080))
    args = parser.parse_args(argv)
    server(args.host, args.port).serve()


if __name__ == "__main__":
    main()
