"""The Clerk JWKS client: the public keys that verify Clerk session tokens.

One :class:`JwksClient` per process (per JWKS URL), shared by every request thread. PyJWT's
``PyJWKClient`` does the HTTP (with an explicit timeout); this class decides when to call it:

- a known ``kid`` is served from memory; the set is refreshed in the background of a
  request once it is older than ``REFRESH_SECONDS``;
- an unknown ``kid`` forces a refetch, at most once per ``COOLDOWN_SECONDS``, so a rotated
  key is picked up within seconds while a flood of made-up kids cannot hammer Clerk;
- when the JWKS cannot be fetched, the last good keys keep working (Clerk being down
  must not log everybody out; the fetch is retried every ``FAILED_REFRESH_BACKOFF``), and
  only a token whose key was never seen fails with :class:`JwksUnavailable`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from jwt import PyJWK, PyJWKClient, PyJWKSet
from jwt.exceptions import PyJWKClientError, PyJWKSetError

from integrations.errors import ProviderError, track

REFRESH_SECONDS = 300.0
COOLDOWN_SECONDS = 2.0
FAILED_REFRESH_BACKOFF = 30.0


class JwksUnavailable(ProviderError):
    """The JWKS could not be fetched and no cached key matches the token."""

    def __init__(self, detail: str) -> None:
        super().__init__("clerk", detail, permanent=False)


class UnknownSigningKey(Exception):
    """The JWKS was fetched and has no key with the token's ``kid``."""


class JwksClient:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self._fetcher = PyJWKClient(url, cache_jwk_set=False, timeout=timeout)
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch (monotonic)
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._last_error: str | None = None

    def signing_key(self, kid: str) -> PyJWK:
        now = time.monotonic()
        with self._lock:
            key = self._keys.get(kid)
            stale = self._fetched_at is None or now - self._fetched_at > REFRESH_SECONDS
            if key is not None and not stale:
                return key
            # With good keys in hand, a failing JWKS is retried less often: each attempt may
            # wait out the timeout, holding this lock (one fetch at a time, by design).
            pause = FAILED_REFRESH_BACKOFF if self._last_error and self._keys else COOLDOWN_SECONDS
            if self._attempted_at is None or now - self._attempted_at >= pause:
                self._refresh(now)
            key = self._keys.get(kid)
            if key is not None:
                return key
            if self._last_error is not None:
                raise JwksUnavailable(self._last_error)
            raise UnknownSigningKey(kid)

    def _refresh(self, now: float) -> None:
        """Fetch the set; on failure keep the last good keys and remember the error."""
        self._attempted_at = now
        try:
            with track("clerk", "jwks"):
                data: Any = self._fetcher.fetch_data()
                keys = PyJWKSet.from_dict(data).keys
        except (PyJWKClientError, PyJWKSetError, ValueError, TypeError) as exc:
            self._last_error = f"cannot fetch the JWKS from {self.url}: {exc}"
            return
        self._keys = {key.key_id: key for key in keys if key.key_id}
        self._fetched_at = now
        self._last_error = None


_clients: dict[str, JwksClient] = {}
_clients_lock = threading.Lock()


def jwks_url() -> str:
    return f"{settings.CLERK_ISSUER}/.well-known/jwks.json"


def jwks_client() -> JwksClient:
    """The process's client for the configured issuer (settings may change in tests)."""
    url = jwks_url()
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = JwksClient(url, settings.PROVIDER_TIMEOUTS["clerk"])
        return client


def reset_clients() -> None:
    """Forget every cached key (tests: a cold cache)."""
    with _clients_lock:
        _clients.clear()
