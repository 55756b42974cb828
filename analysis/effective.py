"""The override rule in SQL: a person's correction (``overrides->'field'``) wins over the
model's value. The one place it is written for the database; :class:`~analysis.models.
CallAnalysis`'s stored generated columns are built from it, and the KPIs and the calls
list filters read those columns (:func:`analysis.selectors.effective_fields` is the same
rule over a loaded row)."""

from __future__ import annotations

from django.db.models import BooleanField, CharField, F, JSONField
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce


def effective(name: str, prefix: str = "") -> Coalesce:
    """``COALESCE(overrides->'name', name)`` of the analysis at ``prefix``, as JSON."""
    return Coalesce(
        KeyTransform(name, f"{prefix}overrides"), F(f"{prefix}{name}"), output_field=JSONField()
    )


def effective_text(name: str, prefix: str = "") -> Coalesce:
    """``COALESCE(overrides->>'name', name)``: a text field's effective value."""
    return Coalesce(
        KeyTextTransform(name, f"{prefix}overrides"), F(f"{prefix}{name}"), output_field=CharField()
    )


def effective_bool(name: str, prefix: str = "") -> Coalesce:
    """``COALESCE((overrides->>'name')::boolean, name)``: a boolean field's."""
    return Coalesce(
        Cast(KeyTextTransform(name, f"{prefix}overrides"), BooleanField()),
        F(f"{prefix}{name}"),
        output_field=BooleanField(),
    )
