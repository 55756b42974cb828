"""Django's ASGI handler with the webhooks' lean middleware chain, for
bench/webhook_ingest.py's ASGI candidates only (Otto serves WSGI: otto/web.py).

As ``otto.wsgi`` does for WSGI: a webhook route runs ``settings.WEBHOOK_MIDDLEWARE`` and
its sync view in one ``sync_to_async`` call (one hop to the request's thread), every
other route Django's own async path through the full middleware.
"""

from __future__ import annotations

import os
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

from otto.handlers import _Chain

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")


class LeanWebhookASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._prefixes = tuple(settings.WEBHOOK_PATH_PREFIXES)
        webhooks = _Chain(list(settings.WEBHOOK_MIDDLEWARE))
        self._webhook_response: Any = sync_to_async(webhooks.get_response, thread_sensitive=True)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(self._prefixes):
            return await self._webhook_response(request)
        return await super().get_response_async(request)


django.setup(set_prefix=False)
application = LeanWebhookASGIHandler()
