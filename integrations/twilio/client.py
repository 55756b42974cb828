"""Twilio Programmable Messaging through the official ``twilio`` SDK.

Built per call from settings: ``client.api.base_url = TWILIO_API_BASE_URL`` (the sandbox
locally), the account SID and auth token, and an explicit timeout through
``TwilioHttpClient(timeout=...)``. Every send asks for status callbacks at
``PUBLIC_BASE_URL + /sms/twilio-status``.

The SDK does not retry. A 429 means Twilio did not accept the message, so it is retried
here a couple of times with short sleeps. A timeout or a garbled answer to a send is
ambiguous (the message may have gone out); it is raised as transient, and whoever retries
a send must first look for the message (status callback or ``get_message``).
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from integrations.errors import ProviderError, track

logger = logging.getLogger(__name__)

PROVIDER = "twilio"
STATUS_CALLBACK_PATH = "/sms/twilio-status"


class TwilioError(ProviderError):
    """A ProviderError carrying Twilio's error code (21211 invalid number, 21610 opted out)."""

    def __init__(self, detail: str, *, status: int, code: int | None, retry_after: float | None):
        transient = status == 429 or status >= 500
        super().__init__(
            PROVIDER, detail, permanent=not transient, status=status, retry_after=retry_after
        )
        self.code = code


@dataclass(frozen=True)
class SmsMessage:
    """A message as Twilio reports it."""

    sid: str
    status: str
    to: str
    from_: str | None
    body: str
    direction: str | None
    num_segments: int | None
    error_code: int | None
    error_message: str | None
    date_created: datetime.datetime | None
    date_sent: datetime.datetime | None


# The ignore: twilio ships no type information, so its base class is Any to mypy.
class _HttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Keeps the last ``Retry-After``: TwilioRestException does not carry headers."""

    retry_after: float | None = None

    def request(self, *args: Any, **kwargs: Any) -> TwilioResponse:
        response = super().request(*args, **kwargs)
        self.retry_after = None
        if response.status_code == 429 and response.headers:
            try:
                self.retry_after = max(0.0, float(response.headers.get("Retry-After", "")))
            except ValueError:
                self.retry_after = None
        return response


class TwilioClient:
    def __init__(
        self,
        *,
        base_url: str,
        account_sid: str | None,
        auth_token: str | None,
        from_number: str | None,
        status_callback_url: str,
        timeout: float,
        max_retries: int = 2,
        max_wait: float = 3.0,
    ) -> None:
        if not account_sid or not auth_token:
            raise ProviderError(
                PROVIDER, "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required", permanent=True
            )
        self.base_url = base_url.rstrip("/")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.status_callback_url = status_callback_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait

    @classmethod
    def from_settings(cls) -> TwilioClient:
        return cls(
            base_url=settings.TWILIO_API_BASE_URL,
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            from_number=settings.TWILIO_FROM_NUMBER,
            status_callback_url=settings.PUBLIC_BASE_URL.rstrip("/") + STATUS_CALLBACK_PATH,
            timeout=float(settings.PROVIDER_TIMEOUTS["twilio"]),
        )

    def send_sms(self, to: str, body: str, *, from_: str | None = None) -> SmsMessage:
        """Send ``body`` to ``to`` (E.164) from ``from_`` (default: TWILIO_FROM_NUMBER)."""
        sender = from_ or self.from_number
        if not sender:
            raise ProviderError(PROVIDER, "no sending number is configured", permanent=True)
        with track(PROVIDER, "send_sms"):
            message = self._call(
                "send_sms",
                lambda client: client.messages.create(
                    to=to, from_=sender, body=body, status_callback=self.status_callback_url
                ),
            )
            return _message(message)

    def list_messages(
        self, *, to: str, from_: str, created_after: datetime.datetime, limit: int = 20
    ) -> list[SmsMessage]:
        """The newest messages ``from_`` → ``to`` created since ``created_after``: how a
        retried send finds what Twilio already accepted. Not filtered by Twilio's
        ``DateSent``: a message still queued there has no sent date yet."""
        with track(PROVIDER, "list_messages"):
            found = self._call(
                "list_messages",
                lambda client: client.messages.list(to=to, from_=from_, limit=limit),
            )
            messages = [_message(instance) for instance in found]
        return [m for m in messages if m.date_created is None or m.date_created >= created_after]

    def get_message(self, sid: str) -> SmsMessage:
        with track(PROVIDER, "get_message"):
            return _message(self._call("get_message", lambda client: client.messages(sid).fetch()))

    def _client(self) -> tuple[Client, _HttpClient]:
        http = _HttpClient(timeout=self.timeout)
        client = Client(self.account_sid, self.auth_token, http_client=http)
        # Domain.absolute_url() reads base_url on every request (providers.md §2.1).
        client.api.base_url = self.base_url
        return client, http

    def _call(self, operation: str, action: Any) -> Any:
        client, http = self._client()
        for attempt in range(self.max_retries + 1):
            try:
                return action(client)
            except TwilioRestException as exc:
                wait = http.retry_after if http.retry_after is not None else 0.5 * 2**attempt
                if exc.status == 429 and attempt < self.max_retries and wait <= self.max_wait:
                    logger.info("Twilio rate limit on %s; retrying in %.1fs", operation, wait)
                    time.sleep(wait)
                    continue
                raise TwilioError(
                    f"{operation}: Twilio error {exc.code}: {exc.msg}",
                    status=exc.status,
                    code=exc.code,
                    retry_after=http.retry_after,
                ) from exc
            except requests.Timeout as exc:
                raise ProviderError(PROVIDER, f"{operation} timed out", permanent=False) from exc
            except requests.RequestException as exc:
                raise ProviderError(
                    PROVIDER, f"{operation} failed: {type(exc).__name__}: {exc}", permanent=False
                ) from exc
            except ValueError as exc:
                # json.JSONDecodeError from the SDK parsing a garbled 2xx body.
                raise ProviderError(
                    PROVIDER, f"{operation}: malformed JSON from Twilio: {exc}", permanent=False
                ) from exc
            except TwilioException as exc:
                raise ProviderError(PROVIDER, f"{operation}: {exc}", permanent=True) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")


def _message(instance: Any) -> SmsMessage:
    if not getattr(instance, "sid", None):
        raise ProviderError(PROVIDER, "Twilio answered without a message sid", permanent=True)
    try:
        segments = int(instance.num_segments) if instance.num_segments is not None else None
        return SmsMessage(
            sid=instance.sid,
            status=str(instance.status),
            to=instance.to,
            from_=instance.from_,
            body=instance.body or "",
            direction=str(instance.direction) if instance.direction else None,
            num_segments=segments,
            error_code=instance.error_code,
            error_message=instance.error_message,
            date_created=instance.date_created,
            date_sent=instance.date_sent,
        )
    except (TypeError, ValueError) as exc:
        raise ProviderError(
            PROVIDER, f"unexpected message from Twilio: {exc}", permanent=True
        ) from exc
