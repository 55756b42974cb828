"""Sentry, with the same PII masking as the logs.

``send_default_pii=False`` keeps cookies, auth headers and the user's IP out, but not
what is *in* the data: an exception message with a caller's number, a card number a
transcript stage logged, a webhook body. Every event, transaction and breadcrumb passes
:func:`scrub_event` (``otto.logging.redact``: emails, card numbers, SSNs, phone numbers)
before it leaves the process. Local variables are not sent at all: the pipeline's frames
hold raw transcripts and provider payloads, which no pattern can reliably mask.
"""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

from otto.logging import redact_value

# Fields Sentry needs verbatim to group, order and link events, and code locations; none
# of them carries data. Everything else is masked wherever it sits in the event.
_VERBATIM = frozenset(
    {
        "event_id",
        "trace_id",
        "span_id",
        "parent_span_id",
        "timestamp",
        "start_timestamp",
        "release",
        "environment",
        "platform",
        "level",
        "sdk",
        "modules",
        "debug_meta",
        "type",
        "mechanism",
        "in_app",
        "lineno",
        "colno",
        "filename",
        "abs_path",
        "module",
        "function",
    }
)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return _scrub_mapping(value)
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return redact_value(value)


def _scrub_mapping(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item if key in _VERBATIM else _scrub(item) for key, item in value.items()}


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The event with PII masked in its message, exceptions, extra, contexts, tags, request
    (body, headers, query string, URL), breadcrumbs and any frame variables."""
    return _scrub_mapping(event)


def scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    return _scrub_mapping(crumb)


def sentry_options(dsn: str, environment: str, traces_sample_rate: float) -> dict[str, Any]:
    """The options :func:`init_sentry` passes to ``sentry_sdk.init`` (tests reuse them)."""
    return {
        "dsn": dsn,
        "environment": environment,
        "traces_sample_rate": traces_sample_rate,
        # Phone numbers and addresses are our customers' customers' data.
        "send_default_pii": False,
        # Frames of the pipeline hold unredacted transcripts and payloads (see above).
        "include_local_variables": False,
        # Webhook bodies carry names and addresses that no pattern recognises.
        "max_request_body_size": "never",
        "before_send": scrub_event,
        "before_send_transaction": scrub_event,
        "before_breadcrumb": scrub_breadcrumb,
        "integrations": [DjangoIntegration(), LoggingIntegration(event_level=None)],
    }


def init_sentry(dsn: str, environment: str, traces_sample_rate: float) -> None:
    sentry_sdk.init(**sentry_options(dsn, environment, traces_sample_rate))
