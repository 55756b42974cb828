"""Per-request query accounting for the API benchmark (bench/settings.py adds it only with
``BENCH_QUERIES`` set, so the other benches run the production middleware unchanged).

Every response gets ``X-Query-Count`` (statements run on the default database while the
request was served, authentication and pagination included) and ``X-Query-Ms`` (their
time in the database driver). A request sent with ``X-Bench-Explain: <name>`` also has its
slowest statement run again under ``EXPLAIN (ANALYZE, BUFFERS)``, the plan written to
``$BENCH_EXPLAIN_DIR/<name>.txt``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse

SAFE_NAME = re.compile(r"^[\w.-]{1,100}$")


class QueryCountMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        queries: list[tuple[float, str, Any]] = []

        def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                queries.append((time.perf_counter() - started, sql, params))

        with connection.execute_wrapper(timed):
            response = self.get_response(request)
        response["X-Query-Count"] = str(len(queries))
        response["X-Query-Ms"] = f"{sum(q[0] for q in queries) * 1000:.3f}"
        name = request.headers.get("X-Bench-Explain", "")
        if queries and SAFE_NAME.match(name) and os.environ.get("BENCH_EXPLAIN_DIR"):
            self.explain(name, max(queries, key=lambda q: q[0]))
        return response

    @staticmethod
    def explain(name: str, query: tuple[float, str, Any]) -> None:
        seconds, sql, params = query
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            statement = cursor.mogrify(sql, params) if params else sql
        if isinstance(statement, bytes):
            statement = statement.decode()
        text = f"-- slowest of the request: {seconds * 1000:.2f} ms\n{statement}\n\n{plan}\n"
        (Path(os.environ["BENCH_EXPLAIN_DIR"]) / f"{name}.txt").write_text(text)
