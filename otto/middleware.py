import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from otto.logging import bind_request_id, check_request_id

REQUEST_ID_HEADER = "X-Request-ID"
# Any token is a valid HTTP method; only these become a label value.
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID (or makes one), binds it for logs, echoes it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = check_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        # Left bound after the response on purpose: Django logs 4xx/5xx responses outside
        # the middleware chain, and the next request binds its own id first thing.
        bind_request_id(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class MetricsMiddleware:
    """Counts and times every request by its route template (``api/v1/calls/<int:pk>/``),
    never its path, so ids and tenants do not become series. The outermost middleware,
    so the time covers the whole stack; a path no route matches is ``unmatched``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from otto.metrics import HTTP_LATENCY, HTTP_REQUESTS

        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        route = (match.route or match.view_name or "unknown") if match else "unmatched"
        HTTP_LATENCY.labels(route=route).observe(time.perf_counter() - started)
        method = request.method if request.method in _METHODS else "other"
        HTTP_REQUESTS.labels(route=route, method=method, status=response.status_code).inc()
        return response
