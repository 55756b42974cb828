"""The pipeline's series for ``GET /metrics``, registered with the core in ``CallsConfig``."""

from collections.abc import Iterable

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from calls.models import Call


def collect_calls_by_stage() -> Iterable[Metric]:
    """Calls in each stage now, every stage listed (0 included), across all tenants."""
    rows = Call.objects.order_by().values("stage").annotate(n=Count("id"))
    counts = {row["stage"]: row["n"] for row in rows}
    gauge = GaugeMetricFamily(
        "otto_calls_by_stage", "Calls in each pipeline stage.", labels=["stage"]
    )
    for stage in Call.Stage:
        gauge.add_metric([stage.value], counts.get(stage.value, 0))
    yield gauge
