"""The OpenAPI schema's error responses, documented once for every operation.

drf-spectacular documents what a view returns on success. The errors come from layers it does
not see: authentication, roles, throttles, the filters, cursor pagination, idempotency keys
and ``otto.errors``, which gives all of them one shape. :func:`document_errors` (a
postprocessing hook in ``SPECTACULAR_SETTINGS``) adds, per operation, the statuses that
operation can really answer, each with that shape:

- 401 and 403 where the view takes a signed-in member (``TenantViewMixin``): no or a bad
  token, an organization Otto does not know, a role the route does not allow;
- 429 where the view has throttles;
- 404 on a route with an id (another tenant's id is not found, never forbidden), and on a
  cursor-paginated list (DRF answers a cursor it did not hand out with 404);
- 400 on every write (a body that does not parse or validate) and on a read that takes
  query parameters (a filter value that does not parse);
- 409 and 422 on every POST, from ``Idempotency-Key`` (still running; reused for another
  request), whose header is documented there too.

A status a view declares itself (``extend_schema(responses={409: OpenApiResponse(...)})``,
for a conflict only that view knows of) keeps its description and gains the shape.
"""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import CursorPagination

from otto.idempotency import HEADER, MAX_KEY_LENGTH
from otto.viewsets import TenantViewMixin

ERROR_REF = {"$ref": "#/components/schemas/Error"}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every 4xx and 5xx of the API (otto/errors.py).",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable and machine-readable, e.g. validation_error, "
                    "not_authenticated, permission_denied, not_found, conflict, throttled.",
                },
                "message": {"type": "string", "description": "For people; may change."},
                "details": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "For validation_error, the messages per field; for "
                    "throttled, retry_after_seconds; otherwise what the error points at.",
                },
                "request_id": {
                    "type": "string",
                    "nullable": True,
                    "description": "The X-Request-ID of this request, for support.",
                },
            },
            "required": ["code", "message", "details", "request_id"],
        }
    },
    "required": ["error"],
}

DESCRIPTIONS = {
    "400": "The request does not parse or validate (`validation_error`, details per field).",
    "401": "No token, or one that is invalid or expired.",
    "403": "The organization is unknown to Otto, or the caller's role may not do this.",
    "404": "Not found: no such object for this company, or a cursor this list did not give.",
    "409": "A conflict: another request with this Idempotency-Key is still running, or the "
    "change collides with something that exists.",
    "422": "This Idempotency-Key was already used for a different request.",
    "429": "Too many requests; `details.retry_after_seconds` says when to retry.",
}

IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": "Makes a retried POST safe: the same key and body replay the first "
    "response (with `Idempotent-Replayed: true`); the same key with another body is 422.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        # Printable ASCII, no leading or trailing space (the server strips those).
        "pattern": r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$",
    },
}

WRITES = {"post", "put", "patch", "delete"}
HTTP_METHODS = WRITES | {"get", "head", "options", "trace"}


def error_statuses(view: Any, method: str, path: str, operation: dict[str, Any]) -> list[str]:
    """The error statuses ``operation`` (``method`` on ``path``, served by ``view``) can
    answer, beyond the ones it declares itself."""
    statuses: list[str] = []
    if isinstance(view, TenantViewMixin):
        statuses += ["401", "403"]
    takes_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
    if method in WRITES or takes_query:
        statuses.append("400")
    paginated = getattr(view, "action", None) == "list" and isinstance(
        getattr(view, "paginator", None), CursorPagination
    )
    if "{" in path or paginated:
        statuses.append("404")
    if method == "post" and isinstance(view, TenantViewMixin):
        statuses += ["409", "422"]
    if view.get_throttles():
        statuses.append("429")
    return statuses


def document_errors(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    # The generator's own (private) pairing of paths with view instances: the same views it
    # built the operations from, so the statuses come from the real throttles and pagination.
    views = {
        (path, method.lower()): view
        for path, _regex, method, view in generator._get_paths_and_endpoints()
    }
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            view = views.get((path, method))
            if view is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in error_statuses(view, method, path, operation):
                responses.setdefault(status, {"description": DESCRIPTIONS[status]})
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response["content"] = {"application/json": {"schema": ERROR_REF}}
            operation["responses"] = dict(sorted(responses.items()))
            if method == "post" and isinstance(view, TenantViewMixin):
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == HEADER for p in parameters):
                    parameters.append(IDEMPOTENCY_HEADER)
    return result
