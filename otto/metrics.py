"""Prometheus metrics (DESIGN §9.7), served by ``GET /metrics``.

Counters and histograms are ``prometheus_client`` objects recorded where things happen.
Under the web server and the qcluster every process writes them to ``PROMETHEUS_MULTIPROC_DIR``
(multiprocess mode), and the scrape adds the files up, so two web workers and the
cluster's workers are one series. Without that variable a process serves only its own
counts, which is what ``make run`` and the in-process tests see.

Gauges that are a fact of the database or the broker (queue depth, calls per stage) are
not recorded: they are read when scraped, by *collectors*. The core knows queues, so it
collects their depth; the apps register a collector for what they own (calls per stage
is registered in ``CallsConfig.ready()``), because the core may not import them.

No series carries a tenant label.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

logger = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "otto_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "otto_http_request_duration_seconds", "HTTP request latency by route template.", ["route"]
)
WEBHOOKS = Counter(
    "otto_webhooks_total", "Webhook deliveries by provider and outcome.", ["provider", "outcome"]
)
PROVIDER_REQUESTS = Counter(
    "otto_provider_requests_total",
    "Provider API calls by provider and outcome (ok, transient, permanent, error).",
    ["provider", "outcome"],
)
PROVIDER_LATENCY = Histogram(
    "otto_provider_request_duration_seconds", "Provider API call latency.", ["provider"]
)
LLM_TOKENS = Counter(
    "otto_llm_tokens_total", "LLM tokens by model and kind (input, output).", ["model", "kind"]
)
LLM_COST = Counter(
    "otto_llm_cost_usd_total", "LLM spend in US dollars by model, at Otto's price list.", ["model"]
)
RATE_LIMIT_ERRORS = Counter(
    "otto_rate_limit_errors_total",
    "Rate-limit checks that could not reach the cache and let the request through.",
    ["scope"],
)


def record_provider_call(provider: str, operation: str, outcome: str, seconds: float) -> None:
    """Subscribed to ``integrations.errors`` by ``otto.apps``: the adapters cannot import
    the core, so the core listens to them. ``operation`` is left out of the series to
    keep them few (DESIGN §9.7 names provider and outcome only)."""
    PROVIDER_LATENCY.labels(provider=provider).observe(seconds)
    PROVIDER_REQUESTS.labels(provider=provider, outcome=outcome).inc()


def forget_dead_processes(directory: str | None = None) -> list[int]:
    """Mark dead every process whose live gauges are in ``PROMETHEUS_MULTIPROC_DIR`` but
    which is gone (the pids, marked). Each web worker calls it as it starts
    (otto/wsgi.py): granian, unlike gunicorn, has no hook in its main process when a
    worker exits, and a worker it starts again is where the next one begins."""
    directory = directory or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory or not os.path.isdir(directory):
        return []
    dead: set[int] = set()
    for name in os.listdir(directory):
        stem, _, number = name.removesuffix(".db").rpartition("_")
        if not (stem.startswith("gauge_live") and number.isdigit()):
            continue
        try:
            os.kill(int(number), 0)
        except ProcessLookupError:
            dead.add(int(number))
        except PermissionError:
            pass  # alive, another user's
    for pid in sorted(dead):
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
    return sorted(dead)


# --- collectors read at scrape time ----------------------------------------------------

Collector = Callable[[], Iterable[Metric]]
_collectors: dict[str, Collector] = {}


def register_collector(name: str, collector: Collector) -> None:
    """Have ``collector()`` add metric families to every scrape (idempotent by name)."""
    _collectors[name] = collector


def collect_queue_depth() -> Iterable[Metric]:
    from otto.queues import Queue, cluster_for, get_broker

    gauge = GaugeMetricFamily(
        "otto_queue_depth",
        "Tasks waiting on each queue (queues routed to one cluster share its depth).",
        labels=["queue"],
    )
    depths: dict[str, int] = {}
    for queue in Queue:
        cluster = cluster_for(queue)
        if cluster not in depths:
            depths[cluster] = get_broker(cluster).queue_size()
        gauge.add_metric([queue.value], depths[cluster])
    yield gauge


register_collector("queue_depth", collect_queue_depth)


class _Collected:
    """The registered collectors as one prometheus collector; one failing is logged and
    left out of the scrape instead of failing it."""

    def collect(self) -> Iterable[Metric]:
        for name, collector in list(_collectors.items()):
            try:
                families = list(collector())
            except Exception:
                logger.warning("metrics collector %s failed", name, exc_info=True)
                continue
            yield from families


def render() -> bytes:
    """Every process's counters (added up in multiprocess mode) and the collectors."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        recorded = CollectorRegistry()
        multiprocess.MultiProcessCollector(recorded)  # type: ignore[no-untyped-call]
    else:
        recorded = REGISTRY
    collected = CollectorRegistry(auto_describe=False)
    collected.register(_Collected())
    return generate_latest(recorded) + generate_latest(collected)


@require_GET
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``Authorization: Bearer <METRICS_TOKEN>``; 404 when no token is configured, so an
    unconfigured deployment does not advertise the endpoint, 401 for a wrong one."""
    # Imported here: the recording side of this module is imported by DRF's throttles,
    # which otto.errors (through DRF's views) imports in turn.
    from otto.errors import error_body

    token = settings.METRICS_TOKEN
    if not token:
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        body = error_body("not_authenticated", "Send Authorization: Bearer <METRICS_TOKEN>.")
        response = JsonResponse(body, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
