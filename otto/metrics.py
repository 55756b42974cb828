"""A small in-process metrics registry: counters and histograms with labels.

Enough for the clients to record latency and outcome now; the Prometheus ``/metrics``
endpoint renders this registry later. Thread-safe; one registry per process.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]

DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted((key, str(value)) for key, value in labels.items()))


@dataclass
class Counter:
    name: str
    help: str
    values: dict[Labels, float] = field(default_factory=lambda: defaultdict(float))

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        with _lock:
            self.values[_labels(labels)] += amount

    def value(self, **labels: str) -> float:
        with _lock:
            return self.values.get(_labels(labels), 0.0)


@dataclass
class Histogram:
    name: str
    help: str
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    counts: dict[Labels, list[int]] = field(default_factory=dict)
    sums: dict[Labels, float] = field(default_factory=lambda: defaultdict(float))

    def observe(self, value: float, **labels: str) -> None:
        key = _labels(labels)
        with _lock:
            counts = self.counts.setdefault(key, [0] * (len(self.buckets) + 1))
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[index] += 1
            counts[-1] += 1  # +Inf, i.e. the total count
            self.sums[key] += value

    def count(self, **labels: str) -> int:
        with _lock:
            counts = self.counts.get(_labels(labels))
            return counts[-1] if counts else 0


_lock = threading.RLock()
_registry: dict[str, Counter | Histogram] = {}


def counter(name: str, help: str) -> Counter:
    with _lock:
        metric = _registry.setdefault(name, Counter(name, help))
    assert isinstance(metric, Counter)  # noqa: S101 - a name has one kind
    return metric


def histogram(name: str, help: str, buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> Histogram:
    with _lock:
        metric = _registry.setdefault(name, Histogram(name, help, buckets))
    assert isinstance(metric, Histogram)  # noqa: S101 - a name has one kind
    return metric


def registry() -> dict[str, Counter | Histogram]:
    with _lock:
        return dict(_registry)


PROVIDER_CALLS = counter(
    "otto_provider_calls_total", "Provider API calls by provider, operation and outcome."
)
PROVIDER_LATENCY = histogram(
    "otto_provider_call_seconds", "Provider API call latency by provider and operation."
)


def record_provider_call(provider: str, operation: str, outcome: str, seconds: float) -> None:
    """Subscribed to ``integrations.errors`` by ``otto.apps``: the adapters cannot import
    the core, so the core listens to them."""
    PROVIDER_LATENCY.observe(seconds, provider=provider, operation=operation)
    PROVIDER_CALLS.inc(provider=provider, operation=operation, outcome=outcome)
