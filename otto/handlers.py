"""The WSGI handler: Django's, with a lean middleware chain for provider webhooks.

A request whose path starts with one of ``settings.WEBHOOK_PATH_PREFIXES`` runs through
``settings.WEBHOOK_MIDDLEWARE`` instead of ``settings.MIDDLEWARE``; everything else is
Django's own handler, unchanged. The lean chain holds plain request/response middleware
only (no ``process_view``, ``process_exception`` or template hooks), all sync, which
:class:`_Chain` checks when it starts.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

_HOOKS = ("process_view", "process_exception", "process_template_response")


class _Chain(BaseHandler):
    """A handler that runs the view behind the given middleware, outermost first."""

    def __init__(self, middleware: list[str]) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        # Django's own view dispatch (untyped in django-stubs): resolve, view, response.
        view = self._get_response  # type: ignore[attr-defined]
        handler: Any = convert_exception_to_response(view)
        for path in reversed(middleware):
            factory = import_string(path)
            instance = factory(handler)
            if any(hasattr(instance, hook) for hook in _HOOKS) or not getattr(
                factory, "sync_capable", True
            ):
                raise ImproperlyConfigured(
                    f"WEBHOOK_MIDDLEWARE takes sync request/response middleware only: {path}"
                )
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler


class OttoWSGIHandler(WSGIHandler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prefixes = tuple(settings.WEBHOOK_PATH_PREFIXES)
        self._webhooks = _Chain(list(settings.WEBHOOK_MIDDLEWARE))

    def get_response(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(self._prefixes):
            return self._webhooks.get_response(request)
        return super().get_response(request)
