"""Bland AI voice calls over httpx (Bland has no official Python SDK).

Auth is the raw API key in ``authorization`` (no ``Bearer``), as Bland documents it.
Sending a call is not idempotent on Bland's side, so a 429 (the call was not placed) is
retried once in-call, but a timeout is not: the caller must check before re-sending.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from django.conf import settings

from integrations.bland.schemas import Call, SendCallRequest, SendCallResponse
from integrations.errors import ProviderError, track
from integrations.http import parse_model, request_json

logger = logging.getLogger(__name__)

PROVIDER = "bland"


class BlandClient:
    def __init__(self, *, base_url: str, api_key: str | None, timeout: float = 30.0) -> None:
        if not api_key:
            raise ProviderError(PROVIDER, "BLAND_API_KEY is not configured", permanent=True)
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    @classmethod
    def from_settings(cls) -> BlandClient:
        return cls(
            base_url=settings.BLAND_BASE_URL,
            api_key=settings.BLAND_API_KEY,
            timeout=float(settings.PROVIDER_TIMEOUTS["bland"]),
        )

    def send_call(self, request: SendCallRequest) -> SendCallResponse:
        """Place an outbound AI call; Bland POSTs the call object to ``request.webhook``."""
        if not (request.task or request.pathway_id):
            raise ProviderError(PROVIDER, "a call needs a task or a pathway_id", permanent=True)
        with track(PROVIDER, "send_call"):
            data = self._send("POST", "/v1/calls", request.payload())
            if isinstance(data, dict) and data.get("status") not in (None, "success"):
                # Bland has answered 200 with {"status": "error", ...} in some versions.
                raise ProviderError(PROVIDER, _message(data), permanent=True)
            return parse_model(PROVIDER, SendCallResponse, data, "/v1/calls")

    def get_call(self, call_id: str) -> Call:
        """The call object: status, duration, transcript, recording URL, metadata."""
        with track(PROVIDER, "get_call"):
            data = self._send("GET", f"/v1/calls/{call_id}", None)
            return parse_model(PROVIDER, Call, data, "/v1/calls/{id}")

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        return request_json(
            PROVIDER,
            method,
            self.base_url + path,
            headers=lambda: {"authorization": self.api_key, "Accept": "application/json"},
            body=body,
            timeout=self.timeout,
            error_text=_error_text,
            label=f"{method} {path}",
        )


def _message(data: dict[str, Any]) -> str:
    errors = data.get("errors")
    detail = "; ".join(map(str, errors)) if isinstance(errors, list) else ""
    return f"{data.get('message') or 'error'}" + (f": {detail}" if detail else "")


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        return error if isinstance(error, str) else _message(data)
    return str(data)[:200]
