"""The JSON-over-httpx plumbing shared by the providers without an official SDK.

:func:`request_json` sends one request, retries a 429 in-call only when the wait it asks
for is short (a longer ``Retry-After`` goes back to the caller's backoff rather than block
a worker), and maps every failure onto :class:`ProviderError`: timeouts, connection errors,
429 and 5xx are transient; any other 4xx and an unreadable body are permanent.
"""

from __future__ import annotations

import functools
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pydantic

from integrations.errors import ProviderError

MAX_429_RETRIES = 1
MAX_INLINE_WAIT = 2.0  # seconds

# The id of the request or task being served. The core owns it (``otto.logging``) and hands
# it down with :func:`use_request_ids` from its ``AppConfig.ready()``: the adapters sit below
# the core and cannot import it.
_request_ids: list[Callable[[], str | None]] = []


def use_request_ids(source: Callable[[], str | None]) -> None:
    _request_ids[:] = [source]


def outbound_request_id() -> str:
    """The id to send as ``X-Request-ID``: the current one, so a provider's logs join ours,
    or a fresh one outside any request or task."""
    current = _request_ids[0]() if _request_ids else None
    return current or uuid.uuid4().hex


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context, for every httpx client the adapters build.

    Building one loads the CA bundle: about 20 ms of CPU, which a fresh client per request
    paid every time (three per ingest, more than the stage's whole 20 ms budget;
    docs/performance.md). A context holds no connection state, so sharing it is safe.
    """
    return httpx.create_ssl_context()


def request_json(
    provider: str,
    method: str,
    url: str,
    *,
    headers: Callable[[], dict[str, str]],
    body: dict[str, Any] | None,
    timeout: float,
    error_text: Callable[[httpx.Response], str],
    label: str,
) -> Any:
    """The decoded JSON answer to one request. ``headers`` is called per attempt, so an
    auth token is never stale on a retry; ``label`` names the request in errors."""
    for attempt in range(MAX_429_RETRIES + 1):
        try:
            response = httpx.request(
                method, url, json=body, headers=headers(), timeout=timeout, verify=tls_context()
            )
        except httpx.TimeoutException as exc:
            raise ProviderError(provider, f"{label} timed out", permanent=False) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(provider, f"{label} failed: {exc}", permanent=False) from exc
        if response.status_code == 429:
            wait = retry_after(response)
            if attempt < MAX_429_RETRIES and (wait or 0) <= MAX_INLINE_WAIT:
                time.sleep(wait or 0.5)
                continue
        if response.status_code >= 400:
            raise ProviderError.from_status(
                provider, response.status_code, error_text(response), retry_after(response)
            )
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(
                provider,
                f"malformed JSON from {label}",
                permanent=True,
                status=response.status_code,
            ) from exc
    raise AssertionError("unreachable: the last attempt returns or raises")


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, when the provider sent a number."""
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def parse_model[M: pydantic.BaseModel](provider: str, model: type[M], data: Any, where: str) -> M:
    """``data`` validated as ``model``; a shape we cannot use is a permanent error."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise ProviderError(
            provider,
            f"unexpected {model.__name__} from {where}: {first['loc']} {first['msg']}",
            permanent=True,
        ) from exc
