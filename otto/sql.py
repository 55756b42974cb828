"""SQL building blocks the apps share (PostgreSQL aggregates Django does not ship)."""

from __future__ import annotations

from django.db.models import Aggregate, FloatField


class Median(Aggregate):
    """PostgreSQL's ``percentile_cont(0.5) WITHIN GROUP (ORDER BY …)``; nulls are skipped."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()
