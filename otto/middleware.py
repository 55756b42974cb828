from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from otto.logging import bind_request_id, check_request_id

REQUEST_ID_HEADER = "X-Request-ID"


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
