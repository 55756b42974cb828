"""Structured JSON logs: a request id on every line, and PII masked before it is written."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from typing import Any

import phonenumbers
from pythonjsonlogger.json import JsonFormatter

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# An incoming X-Request-ID is echoed into logs and responses, so only ids that cannot
# smuggle in new log lines or markup are accepted.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def check_request_id(value: str | None) -> str:
    """The caller's id when it is safe to reuse, else a fresh one."""
    if value and _VALID_REQUEST_ID.match(value):
        return value
    return new_request_id()


def get_request_id() -> str | None:
    return _request_id.get()


def bind_request_id(
    value: str | None, token: contextvars.Token[str | None] | None = None
) -> contextvars.Token[str | None] | None:
    """Bind ``value`` for this context; with ``token``, restore what was bound before."""
    if token is not None:
        _request_id.reset(token)
        return None
    return _request_id.set(value)


# --- PII redaction ---------------------------------------------------------------------

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped by spaces or dashes: card numbers (PAN).
_CARD = re.compile(r"(?<![\w])(?:\d[ -]?){12,18}\d(?![\w])")
_SSN = re.compile(r"(?<![\w])\d{3}-\d{2}-\d{4}(?![\w])")
# E.164 and common North American formats: +15551234567, (555) 123-4567, 555.123.4567.
_PHONE = re.compile(
    r"(?<![\w])(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}(?![\w])"
    r"|(?<![\w])\+\d{8,15}(?![\w])"
)


def luhn_ok(digits: str) -> bool:
    """Whether a digit string passes the Luhn check (card numbers do)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    # The Luhn check keeps long ids and epoch timestamps readable.
    digits = re.sub(r"\D", "", match.group())
    return "[card]" if luhn_ok(digits) else match.group()


def redact(text: str) -> str:
    """Mask emails, card numbers, SSNs and phone numbers in free text."""
    text = _EMAIL.sub("[email]", text)
    text = _CARD.sub(_mask_card, text)
    text = _SSN.sub("[ssn]", text)
    return _PHONE.sub("[phone]", text)


def mask_phone(number: str) -> str:
    """A phone number with all but its last four digits hidden: ``+1 •••-•••-4559``.

    For screens where staff recognise a caller without reading the whole number (the admin).
    """
    digits = re.sub(r"\D", "", number)
    if len(digits) < 8:
        return "•" * len(digits)
    try:
        country = phonenumbers.parse(number, None).country_code
    except phonenumbers.NumberParseException:
        return f"••• {digits[-4:]}"
    if country == 1:
        return f"+1 •••-•••-{digits[-4:]}"
    return f"+{country} ••• {digits[-4:]}"


def redact_value(value: Any) -> Any:
    """:func:`redact` applied to every string inside ``value`` (dicts, lists, tuples)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value


class RequestIdFilter(logging.Filter):
    """Stamps the bound request id onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class OttoJsonFormatter(JsonFormatter):
    """One JSON object per line; with ``redact_pii`` every string field is masked."""

    def __init__(self, *args: Any, redact_pii: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        super().__init__(*args, **kwargs)
        self.redact_pii = redact_pii

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        if self.redact_pii:
            return {key: redact_value(value) for key, value in log_data.items()}
        return log_data
