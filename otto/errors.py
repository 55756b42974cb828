"""One JSON error shape for the whole HTTP surface.

``{"error": {"code", "message", "details", "request_id"}}`` for every 4xx and 5xx: DRF
exceptions through :func:`api_exception_handler`, and Django's own 400/403/404/500
(outside a DRF view) through the ``handler*`` views below. Only the admin keeps Django's
HTML pages, because people read those in a browser.
"""

import logging
from typing import Any, cast

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from psycopg.errors import QueryCanceled
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from otto.logging import get_request_id

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details if details is not None else {},
            "request_id": get_request_id(),
        }
    }


def _message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _message(detail[0])
    if isinstance(detail, dict):
        return "Some fields are invalid."
    return str(detail)


class StatementTimeout(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "query_timeout"
    default_detail = (
        "This request needed longer than the database allows. Ask for less at once (a "
        "shorter date range, more filters) and try again."
    )


def _statement_timed_out(exc: Exception) -> bool:
    """PostgreSQL cancelled the statement (``statement_timeout``, or an operator's
    ``pg_cancel_backend``): SQLSTATE 57014, which Django raises as OperationalError."""
    return isinstance(exc, OperationalError) and isinstance(exc.__cause__, QueryCanceled)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif _statement_timed_out(exc):
        logger.warning("a statement ran past DATABASE_STATEMENT_TIMEOUT: %s", exc)
        exc = StatementTimeout()

    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an API error: let Django log it, report it and answer with handler500.
        return None

    # DRF answers only APIExceptions, and the Django ones were converted into them above.
    exc = cast(exceptions.APIException, exc)
    details: object
    if isinstance(exc, exceptions.ValidationError):
        code, message = "validation_error", _message(exc.detail)
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        message, details = _message(exc.detail), getattr(exc, "details", None) or {}
        # djangorestframework-stubs omit the ``wait`` attribute Throttled sets.
        wait = exc.wait if isinstance(exc, exceptions.Throttled) else None  # type: ignore[attr-defined]
        if wait is not None:
            details = {"retry_after_seconds": int(wait) + 1}
    response.data = error_body(code, message, details)
    return response


def _json_for(request: HttpRequest) -> bool:
    return not request.path.startswith("/admin/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _json_for(request):
        return defaults.bad_request(request, exception)
    return JsonResponse(
        error_body("bad_request", "The request could not be understood."), status=400
    )


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _json_for(request):
        return defaults.permission_denied(request, exception)
    body = error_body("permission_denied", "You do not have permission to do this.")
    return JsonResponse(body, status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _json_for(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if not _json_for(request):
        return defaults.server_error(request)
    body = error_body("server_error", "Something went wrong on our side; it has been logged.")
    return JsonResponse(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if not _json_for(request):
        from django.views.csrf import csrf_failure as django_csrf_failure

        return django_csrf_failure(request, reason)
    return JsonResponse(error_body("csrf_failed", f"CSRF check failed: {reason}"), status=403)
