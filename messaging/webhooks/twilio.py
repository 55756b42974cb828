"""Twilio webhooks: ``POST /sms/twilio-webhook`` (inbound SMS) and ``/sms/twilio-status``.

The receive side of the inbox, registered by ``messaging`` (:mod:`messaging.apps`). A
delivery is checked in this order:

1. the body is form-encoded (anything else is refused, 401, nothing stored);
2. ``X-Twilio-Signature`` with twilio's ``RequestValidator`` over ``PUBLIC_BASE_URL`` + the
   route's path and the form parameters, keyed by the deployment's ``TWILIO_AUTH_TOKEN``:
   a bad one is 401 and nothing is stored;
3. the tenant: the ``PhoneNumber`` (sending kind) that is the ``To`` of an inbound SMS or the
   ``From`` of a status callback. An unknown number is stored ``unmatched`` and answered
   401 like CallRail's unknown tenants (:func:`integrations.services.receive_event`).

Dedupe: an inbound SMS by its ``MessageSid``; a status callback by ``MessageSid`` and
``MessageStatus`` (one message has several callbacks), so Twilio's retries store nothing
twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import phonenumbers
from django.http import QueryDict

from integrations.inbox import (
    Handler,
    HandlerResult,
    Incoming,
    SignatureInvalid,
    Source,
    body_key,
    decode_body,
    unparseable,
)
from integrations.models import Provider, WebhookEvent
from integrations.twilio.signature import check_twilio_signature, public_url
from messaging import selectors, services
from otto.models import Company, PhoneNumber

Status = WebhookEvent.Status

INBOUND = "sms.inbound"
STATUS = "sms.status"
PATHS = {INBOUND: "/sms/twilio-webhook", STATUS: "/sms/twilio-status"}
HEADERS = (
    "x-twilio-signature",
    "x-twilio-webhooks-signature-settings",
    "content-type",
    "user-agent",
    "i-twilio-idempotency-token",
)
FORM = "application/x-www-form-urlencoded"
UNKNOWN_SID_ATTEMPTS = 3


def e164(number: str) -> str | None:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def sending_tenant(number: str | None) -> Company | None:
    normalised = e164(number or "")
    if normalised is None:
        return None
    found = (
        PhoneNumber.objects.select_related("company")
        .filter(number=normalised, kind=PhoneNumber.Kind.SENDING, company__is_active=True)
        .first()
    )
    return found.company if found else None


def _form(body: bytes) -> QueryDict:
    return QueryDict(decode_body(body), encoding="utf-8")


def check_delivery(
    body: bytes, headers: Mapping[str, str], route_event_type: str, *, replay: bool
) -> Incoming:
    # Twilio signs no timestamp, so a replay checks exactly what a delivery checks.
    if route_event_type not in PATHS:
        raise SignatureInvalid(f"unknown Twilio route {route_event_type!r}")
    if headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise SignatureInvalid("the body is not form-encoded")
    form = _form(body)
    if not check_twilio_signature(
        public_url(PATHS[route_event_type]),
        form,
        headers.get("x-twilio-signature"),
        signature_settings=headers.get("x-twilio-webhooks-signature-settings"),
    ):
        raise SignatureInvalid("X-Twilio-Signature does not match")
    sid = form.get("MessageSid", "")
    if not sid:
        return unparseable(route_event_type, body, "no MessageSid")
    number = form.get("To") if route_event_type == INBOUND else form.get("From")
    company = sending_tenant(number)
    if company is None:
        return dataclasses.replace(
            Incoming(
                event_type=route_event_type,
                dedupe_key="unmatched:" + body_key(body),
                status=Status.UNMATCHED,
                last_error=f"no tenant sends from {number or '(none)'}",
            ),
            verified=False,
        )
    if route_event_type == INBOUND:
        key = f"sms:{sid}"
    else:
        key = f"status:{sid}:{form.get('MessageStatus', '')}"
    return Incoming(event_type=route_event_type, dedupe_key=key, company=company)


def _media(form: QueryDict) -> list[dict[str, str]]:
    try:
        count = int(form.get("NumMedia") or 0)
    except ValueError:
        count = 0
    return [
        {"url": str(form[f"MediaUrl{n}"]), "content_type": form.get(f"MediaContentType{n}", "")}
        for n in range(count)
        if form.get(f"MediaUrl{n}")
    ]


def handle_inbound(event: WebhookEvent) -> HandlerResult:
    if event.company is None:
        return HandlerResult(status=Status.UNMATCHED, note="the event has no tenant yet")
    form = _form(event.body.encode())
    sender = e164(form.get("From", ""))
    if sender is None:
        return HandlerResult(status=Status.FAILED, note="From is not a phone number")
    services.receive_message(
        event.company,
        sid=form.get("MessageSid", ""),
        from_number=sender,
        to_number=e164(form.get("To", "")) or form.get("To", ""),
        body=form.get("Body", ""),
        media=_media(form),
    )
    return HandlerResult(company=event.company)


def handle_status(event: WebhookEvent) -> HandlerResult:
    if event.company is None:
        return HandlerResult(status=Status.UNMATCHED, note="the event has no tenant yet")
    form = _form(event.body.encode())
    message = selectors.message_by_sid(event.company, form.get("MessageSid", ""))
    if message is None:
        # A callback can beat the send task's own record of the SID: left waiting for the
        # inbox's reaper to run it again (5 min later), a few times, before it is dropped.
        if event.attempts < UNKNOWN_SID_ATTEMPTS:
            return HandlerResult(
                status=Status.RECEIVED, company=event.company, note="no message has this sid yet"
            )
        return HandlerResult(
            status=Status.IGNORED, company=event.company, note="no message has this sid"
        )
    services.record_status(message, form.get("MessageStatus", ""), form.get("ErrorCode", ""))
    return HandlerResult(company=event.company)


HANDLERS: dict[str, Handler] = {INBOUND: handle_inbound, STATUS: handle_status}

SOURCE = Source(provider=Provider.TWILIO, headers=HEADERS, check=check_delivery, handlers=HANDLERS)
