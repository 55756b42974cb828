"""Sandbox Twilio Messages API, status callbacks and inbound SMS.

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (Basic auth with the sandbox's
  account SID and auth token): 201 and a MessageInstance the SDK parses, or Twilio's error
  JSON (``{"code", "message", "more_info", "status"}``). Magic numbers, like Twilio's test
  credentials: To ``+15005550001`` is invalid (21211), ``+15005550004`` has opted out (21610).
- ``GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json``.
- ``GET /2010-04-01/Accounts/{AccountSid}/Messages.json?To=&From=&DateSent>=YYYY-MM-DD``:
  the list a retried send reconciles against, newest first, one page.
- After a send, the message moves to ``sent`` and then ``delivered``; each change is POSTed
  form-encoded to the ``StatusCallback`` URL and signed as Twilio signs
  (``X-Twilio-Signature``). Like Twilio, no callback is sent for the initial ``queued``.
- Control: ``POST /_sandbox/twilio/sms`` delivers a signed inbound SMS (a customer reply)
  to the app's ``/sms/twilio-webhook`` (or the ``url`` given).

Every message is simulated: nothing reaches a phone.
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from integrations.sandbox.config import CREDENTIALS
from integrations.sandbox.server import Request, Response, Sandbox, route
from integrations.twilio.signature import SIGNATURE_HEADER, sign_twilio

API_VERSION = "2010-04-01"
ACCOUNT = rf"/{API_VERSION}/Accounts/(?P<account_sid>AC[0-9a-fA-F]{{32}})"
CALLBACK_DELAY = 0.2  # seconds between status changes; tests override state["twilio"]["delay"]
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
INVALID_NUMBER = "+15005550001"
OPTED_OUT_NUMBER = "+15005550004"


def _error(status: int, code: int, message: str) -> Response:
    return Response.json(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status,
    )


def _authorized(request: Request) -> bool:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return False
    return (
        user == request.params["account_sid"] == CREDENTIALS["TWILIO_ACCOUNT_SID"]
        and password == CREDENTIALS["TWILIO_AUTH_TOKEN"]
    )


def _messages(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    # The state holds whatever each provider keeps; this one keeps rows by id.
    messages: dict[str, dict[str, Any]] = sandbox.state["twilio"].setdefault("messages", {})
    return messages


def _rfc2822(when: datetime | None) -> str | None:
    return format_datetime(when) if when else None


def _public(message: dict[str, Any]) -> dict[str, Any]:
    uri = f"/{API_VERSION}/Accounts/{message['account_sid']}/Messages/{message['sid']}"
    return {k: v for k, v in message.items() if not k.startswith("_")} | {
        "date_created": _rfc2822(message["_created"]),
        "date_updated": _rfc2822(message["_updated"]),
        "date_sent": _rfc2822(message["_sent"]),
        "uri": f"{uri}.json",
        "subresource_uris": {"media": f"{uri}/Media.json"},
    }


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _message(
    *,
    account_sid: str,
    sender: str | None,
    to: str,
    body: str,
    direction: str,
    status: str,
    callback: str | None = None,
    messaging_service_sid: str | None = None,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "sid": _sid("SM"),
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": body,
        "direction": direction,
        "error_code": None,
        "error_message": None,
        "from": sender,
        "to": to,
        "messaging_service_sid": messaging_service_sid,
        "num_media": "0",
        "num_segments": str(max(1, -(-len(body) // 160))),
        "price": None,
        "price_unit": "USD",
        "status": status,
        "_created": now,
        "_updated": now,
        "_sent": now if direction == "inbound" else None,
        "_callback": callback,
    }


@route("POST", ACCOUNT + r"/Messages\.json", "twilio.messages.create")
def create_message(request: Request) -> Response:
    if not _authorized(request):
        return _error(401, 20003, "Authenticate")
    form = {name: values[0] for name, values in request.form().items()}
    to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
    if not to:
        return _error(400, 21604, "A 'To' phone number is required.")
    if not E164.match(to) or to == INVALID_NUMBER:
        return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not sender and not form.get("MessagingServiceSid"):
        return _error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
    if not body and not form.get("MediaUrl"):
        return _error(400, 21602, "Message body is required.")
    if to == OPTED_OUT_NUMBER:
        return _error(400, 21610, "Attempt to send to unsubscribed recipient")

    sandbox = request.sandbox
    message = _message(
        account_sid=request.params["account_sid"],
        sender=sender or None,
        to=to,
        body=body,
        direction="outbound-api",
        status="queued",
        callback=form.get("StatusCallback"),
        messaging_service_sid=form.get("MessagingServiceSid"),
    )
    with sandbox.lock:
        _messages(sandbox)[message["sid"]] = message
        delay = sandbox.state["twilio"].get("delay", CALLBACK_DELAY)
    sid = message["sid"]
    sandbox.later(delay, lambda: _advance(sandbox, sid, "sent"))
    sandbox.later(2 * delay, lambda: _advance(sandbox, sid, "delivered"))
    return Response.json(_public(message), 201)


@route("GET", ACCOUNT + r"/Messages\.json", "twilio.messages.list")
def list_messages(request: Request) -> Response:
    if not _authorized(request):
        return _error(401, 20003, "Authenticate")
    account = request.params["account_sid"]
    to, sender = request.arg("To"), request.arg("From")
    # The SDK sends date_sent_after as "DateSent>" = YYYY-MM-DD: a day, like Twilio.
    since = request.arg("DateSent>")
    with request.sandbox.lock:
        rows = [
            _public(message)
            for message in _messages(request.sandbox).values()
            if message["account_sid"] == account
            and (to is None or message["to"] == to)
            and (sender is None or message["from"] == sender)
            and (since is None or message["_created"].date().isoformat() >= since[:10])
        ]
    rows.reverse()
    uri = f"/{API_VERSION}/Accounts/{account}/Messages.json"
    return Response.json(
        {
            "messages": rows,
            "end": max(len(rows) - 1, 0),
            "first_page_uri": uri,
            "next_page_uri": None,
            "page": 0,
            "page_size": len(rows),
            "previous_page_uri": None,
            "start": 0,
            "uri": uri,
        }
    )


@route("GET", ACCOUNT + r"/Messages/(?P<sid>[A-Z]{2}[0-9a-f]{32})\.json", "twilio.messages.get")
def get_message(request: Request) -> Response:
    if not _authorized(request):
        return _error(401, 20003, "Authenticate")
    message = _messages(request.sandbox).get(request.params["sid"])
    if message is None or message["account_sid"] != request.params["account_sid"]:
        return _error(
            404,
            20404,
            f"The requested resource /Messages/{request.params['sid']}.json was not found",
        )
    return Response.json(_public(message))


def _advance(sandbox: Sandbox, sid: str, status: str) -> None:
    with sandbox.lock:
        message = _messages(sandbox).get(sid)
        if message is None:  # the sandbox was reset meanwhile
            return
        now = datetime.now(UTC)
        message.update(status=status, _updated=now)
        if status == "sent":
            message["_sent"] = now
        callback = message["_callback"]
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "AccountSid": message["account_sid"],
            "From": message["from"] or "",
            "To": message["to"],
            "ApiVersion": API_VERSION,
        }
    if callback:
        _post_signed(sandbox, callback, params)


def _post_signed(sandbox: Sandbox, url: str, params: dict[str, str]) -> int:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        SIGNATURE_HEADER: sign_twilio(url, params, CREDENTIALS["TWILIO_AUTH_TOKEN"]),
        "User-Agent": "TwilioProxy/1.1 (Otto sandbox)",
        "I-Twilio-Idempotency-Token": secrets.token_hex(16),
    }
    return sandbox.deliver(url, urlencode(params).encode(), headers)


@route("POST", r"/_sandbox/twilio/sms", "_sandbox.twilio.sms")
def deliver_inbound_sms(request: Request) -> Response:
    """Deliver a signed inbound SMS. Body: ``from``, ``to``, ``body``, optional ``url``."""
    try:
        spec = request.json()
        sender, to, text = str(spec["from"]), str(spec["to"]), str(spec["body"])
    except (ValueError, TypeError, KeyError) as exc:
        return Response.error(400, f"bad request: {exc!r}")
    if not (E164.match(sender) and E164.match(to)):
        return Response.error(400, "from and to must be E.164 numbers, e.g. +16175550142")
    sandbox = request.sandbox
    url = spec.get("url") or f"{sandbox.app_url}/sms/twilio-webhook"
    message = _message(
        account_sid=CREDENTIALS["TWILIO_ACCOUNT_SID"],
        sender=sender,
        to=to,
        body=text,
        direction="inbound",
        status="received",
    )
    sid = message["sid"]
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": message["account_sid"],
        "From": sender,
        "To": to,
        "Body": text,
        "NumMedia": "0",
        "NumSegments": message["num_segments"],
        "SmsStatus": "received",
        "ApiVersion": API_VERSION,
    }
    if text.strip().upper() in ("STOP", "START", "HELP"):
        # What a Messaging Service with Advanced Opt-Out adds (providers.md §2.2).
        params["OptOutType"] = text.strip().upper()
    with sandbox.lock:
        _messages(sandbox)[sid] = message
    status = _post_signed(sandbox, url, params)
    return Response.json({"sid": sid, "url": url, "status": status, "params": params}, 201)
