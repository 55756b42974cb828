"""The pipeline's series for ``GET /metrics``, registered with the core in ``CallsConfig``."""

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric

from calls.ops import stage_counts


def collect_calls_by_stage() -> Iterable[Metric]:
    """Calls in each stage now, every stage listed (0 included), across all tenants."""
    gauge = GaugeMetricFamily(
        "otto_calls_by_stage", "Calls in each pipeline stage.", labels=["stage"]
    )
    for stage, count in stage_counts().items():
        gauge.add_metric([stage], count)
    yield gauge
