"""Bland AI voice calls over httpx (Bland has no official Python SDK).

Auth is the raw API key in ``authorization`` (no ``Bearer``), as Bland documents it.
Sending a call is not idempotent on Bland's side, so a 429 (the call was not placed) is
retried once in-call, but a timeout is not: the caller must check before re-sending.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pydantic
from django.conf import settings

from integrations.bland.schemas import Call, SendCallRequest, SendCallResponse
from integrations.errors import ProviderError, track

logger = logging.getLogger(__name__)

PROVIDER = "bland"
MAX_429_RETRIES = 1
MAX_INLINE_WAIT = 2.0  # seconds; a longer Retry-After goes back to the caller's backoff


class BlandClient:
    def __init__(self, *, base_url: str, api_key: str, timeout: float = 30.0) -> None:
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
            return _parse(SendCallResponse, data, "/v1/calls")

    def get_call(self, call_id: str) -> Call:
        """The call object: status, duration, transcript, recording URL, metadata."""
        with track(PROVIDER, "get_call"):
            data = self._send("GET", f"/v1/calls/{call_id}", None)
            return _parse(Call, data, "/v1/calls/{id}")

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        headers = {"authorization": self.api_key, "Accept": "application/json"}
        for attempt in range(MAX_429_RETRIES + 1):
            try:
                response = httpx.request(
                    method, self.base_url + path, json=body, headers=headers, timeout=self.timeout
                )
            except httpx.TimeoutException as exc:
                raise ProviderError(
                    PROVIDER, f"{method} {path} timed out", permanent=False
                ) from exc
            except httpx.HTTPError as exc:
                raise ProviderError(
                    PROVIDER, f"{method} {path} failed: {exc}", permanent=False
                ) from exc
            if response.status_code == 429:
                wait = _retry_after(response)
                if attempt < MAX_429_RETRIES and (wait or 0) <= MAX_INLINE_WAIT:
                    time.sleep(wait or 0.5)
                    continue
            if response.status_code >= 400:
                raise ProviderError.from_status(
                    PROVIDER, response.status_code, _error_text(response), _retry_after(response)
                )
            try:
                return response.json()
            except ValueError as exc:
                raise ProviderError(
                    PROVIDER,
                    f"malformed JSON from {method} {path}",
                    permanent=True,
                    status=response.status_code,
                ) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")


def _parse[M: pydantic.BaseModel](model: type[M], data: Any, path: str) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise ProviderError(
            PROVIDER,
            f"unexpected {model.__name__} from {path}: {first['loc']} {first['msg']}",
            permanent=True,
        ) from exc


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


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
