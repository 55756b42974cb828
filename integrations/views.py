"""Webhook endpoints. No JWT and no CSRF: each delivery is verified by its provider's
signature inside the inbox, before anything is stored.

The views know no provider's rules: each looks its provider's source up in the inbox's
registry at request time (:func:`integrations.inbox.source_for`), which the owning app
fills in its ``AppConfig.ready()``. A provider whose app is not installed answers 404.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from integrations import inbox, services
from integrations.models import Provider
from otto.errors import error_body


def _receive(request: HttpRequest, provider: str, route_event_type: str = "") -> JsonResponse:
    if request.method != "POST":
        body = error_body("method_not_allowed", "Webhooks are delivered with POST.")
        return JsonResponse(body, status=405, headers={"Allow": "POST"})
    try:
        source = inbox.source_for(provider)
    except LookupError:
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    try:
        received = services.receive_event(
            source,
            request.body,
            request.headers,
            route_event_type,
            unverified_wait=lambda: inbox.unverified_wait(request),
        )
    except inbox.SignatureInvalid:
        # One answer for every unverified delivery, so it tells nobody which tenant exists;
        # the log and the stored event say why.
        return JsonResponse(error_body("invalid_signature", inbox.REFUSED_MESSAGE), status=401)
    except services.Throttled as exc:
        body = error_body(
            "throttled",
            "Too many unverified deliveries from this address.",
            {"retry_after_seconds": exc.wait},
        )
        return JsonResponse(body, status=429, headers={"Retry-After": str(exc.wait)})
    return JsonResponse({"status": received.status, "id": received.event_id})


@csrf_exempt
def clerk_webhook(request: HttpRequest) -> JsonResponse:
    return _receive(request, Provider.CLERK)


@csrf_exempt
def callrail_webhook(request: HttpRequest, event_type: str) -> JsonResponse:
    return _receive(request, Provider.CALLRAIL, event_type)


@csrf_exempt
def shunya_webhook(request: HttpRequest) -> JsonResponse:
    return _receive(request, Provider.SHUNYA)


@csrf_exempt
def bland_webhook(request: HttpRequest) -> JsonResponse:
    return _receive(request, Provider.BLAND)


# What Twilio expects back: TwiML, here with nothing for it to do (providers.md §2.2).
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _receive_twilio(request: HttpRequest, event_type: str) -> HttpResponse:
    response = _receive(request, Provider.TWILIO, event_type)
    if response.status_code != 200:
        return response
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


@csrf_exempt
def twilio_inbound_webhook(request: HttpRequest) -> HttpResponse:
    return _receive_twilio(request, "sms.inbound")


@csrf_exempt
def twilio_status_webhook(request: HttpRequest) -> HttpResponse:
    return _receive_twilio(request, "sms.status")
