"""SQL building blocks the apps share (PostgreSQL aggregates Django does not ship)."""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db.models import Aggregate, F, FloatField, Index
from django.db.models.functions import Upper


class Median(Aggregate):
    """PostgreSQL's ``percentile_cont(0.5) WITHIN GROUP (ORDER BY …)``; nulls are skipped."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


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
