"""SQL building blocks the apps share (PostgreSQL aggregates Django does not ship)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import connection, transaction
from django.db.models import Aggregate, Exists, F, FloatField, Index
from django.db.models.functions import Upper


class Median(Aggregate):
    """PostgreSQL's ``percentile_cont(0.5) WITHIN GROUP (ORDER BY …)``; nulls are skipped."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


class ProbedExists(Exists):
    """``EXISTS (… OFFSET 0)``: a subquery PostgreSQL probes row by row (an index lookup per
    outer row) instead of hashing. For an ``EXISTS`` inside an ``OR`` the planner may build
    a hashed subplan, reading the whole inner table (every tenant's, as the subquery is
    correlated on a foreign key only) before the first row: 46 ms for the 206,000
    appointments of the benchmark, for a page that needs 150 probes. ``OFFSET`` keeps the
    subquery from being turned into a hashable ``IN`` (PostgreSQL's
    ``simplify_EXISTS_query``); it changes no result."""

    template = "EXISTS(%(subquery)s OFFSET 0)"


class TenantTrigramIndex(GinIndex):
    """``?search=``'s substring match (``UPPER(column) LIKE UPPER('%term%')``, Django's
    ``icontains``) within one tenant: a GIN index over ``(company_id, UPPER(column)
    gin_trgm_ops)`` (the ``btree_gin`` and ``pg_trgm`` extensions), so PostgreSQL reads the
    tenant's matches, not every row of the tenant. On the embedded SQLite default of ``make
    run``, which has neither, it is a plain index on ``(company_id, column)``."""

    def __init__(self, column: str, *, name: str) -> None:
        self.column = column
        super().__init__(F("company"), OpClass(Upper(column), name="gin_trgm_ops"), name=name)

    def deconstruct(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        return (f"{__name__}.{type(self).__name__}", (self.column,), {"name": self.name})

    def create_sql(self, model: Any, schema_editor: Any, using: str = "", **kwargs: Any) -> Any:
        if schema_editor.connection.vendor != "postgresql":
            plain = Index(fields=["company", self.column], name=self.name)
            return plain.create_sql(model, schema_editor, **kwargs)
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def remove_sql(self, model: Any, schema_editor: Any, **kwargs: Any) -> Any:
        if schema_editor.connection.vendor != "postgresql":
            return Index(fields=["company", self.column], name=self.name).remove_sql(
                model, schema_editor, **kwargs
            )
        return super().remove_sql(model, schema_editor, **kwargs)


@contextlib.contextmanager
def local_settings(**settings: str) -> Iterator[None]:
    """Run the block in one transaction with these PostgreSQL planner settings (``SET
    LOCAL``; nothing elsewhere). ``SET LOCAL`` ends with the transaction, so it is safe
    behind a transaction-pooling PgBouncer, where a session setting would leak to the next
    client. Names and values are the code's own, never a request's."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for name, value in settings.items():
                    cursor.execute(f"SET LOCAL {name} = {value}")
        yield
