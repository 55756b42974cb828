"""Webhook endpoints. No JWT and no CSRF: each delivery is verified by its provider's
signature inside the inbox, before anything is stored."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from integrations import inbox
from integrations.callrail import webhooks as callrail
from integrations.clerk import webhooks as clerk
from integrations.shunya import webhooks as shunya
from otto.errors import error_body


def _post_only(request: HttpRequest) -> JsonResponse | None:
    if request.method == "POST":
        return None
    body = error_body("method_not_allowed", "Webhooks are delivered with POST.")
    return JsonResponse(body, status=405, headers={"Allow": "POST"})


@csrf_exempt
def clerk_webhook(request: HttpRequest) -> JsonResponse:
    return _post_only(request) or inbox.receive(request, clerk.SOURCE)


@csrf_exempt
def callrail_webhook(request: HttpRequest, event_type: str) -> JsonResponse:
    return _post_only(request) or inbox.receive(request, callrail.SOURCE, event_type)


@csrf_exempt
def shunya_webhook(request: HttpRequest) -> JsonResponse:
    return _post_only(request) or inbox.receive(request, shunya.SOURCE)
