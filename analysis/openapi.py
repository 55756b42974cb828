"""The call detail's ``analysis`` in the OpenAPI schema (``/api/schema/``).

``calls`` adds the field at run time from its detail-field registry, which analysis fills
in its ``ready()``, so drf-spectacular cannot see it on ``CallDetailSerializer``. This
extension, registered by importing this module (``AnalysisConfig.ready()``), describes it:
the current analysis (:class:`analysis.serializers.CallAnalysisSerializer`), or null.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension

from analysis.serializers import CallAnalysisSerializer


class CallDetailAnalysisExtension(OpenApiSerializerExtension):
    target_class = "calls.serializers.CallDetailSerializer"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer(
            self.target, direction, bypass_extensions=True
        )
        field = CallAnalysisSerializer(allow_null=True, read_only=True)
        schema["properties"]["analysis"] = auto_schema._map_serializer_field(field, direction)
        schema.setdefault("required", []).append("analysis")
        return schema
