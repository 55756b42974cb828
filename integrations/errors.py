"""How every provider client reports failure, and records each call's latency and outcome."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from otto.metrics import counter, histogram

PROVIDER_CALLS = counter(
    "otto_provider_calls_total", "Provider API calls by provider, operation and outcome."
)
PROVIDER_LATENCY = histogram(
    "otto_provider_call_seconds", "Provider API call latency by provider and operation."
)


class ProviderError(Exception):
    """A provider call failed.

    ``permanent`` means retrying the same request cannot help (a 4xx other than 429, a
    body we cannot use): record it and stop. Otherwise (429, 5xx, timeout, connection
    error) the caller retries with backoff, honouring ``retry_after`` when given.
    """

    def __init__(
        self,
        provider: str,
        detail: str,
        *,
        permanent: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider}: {detail}" + (f" (HTTP {status})" if status else ""))
        self.provider = provider
        self.detail = detail
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after

    @classmethod
    def from_status(
        cls, provider: str, status: int, detail: str, retry_after: float | None = None
    ) -> ProviderError:
        transient = status == 429 or status >= 500
        return cls(
            provider, detail, permanent=not transient, status=status, retry_after=retry_after
        )


@contextmanager
def track(provider: str, operation: str) -> Iterator[None]:
    """Record latency and outcome (``ok``, ``transient``, ``permanent``, ``error``)."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except ProviderError as exc:
        outcome = "permanent" if exc.permanent else "transient"
        raise
    except Exception:
        outcome = "error"
        raise
    finally:
        PROVIDER_LATENCY.observe(
            time.perf_counter() - started, provider=provider, operation=operation
        )
        PROVIDER_CALLS.inc(provider=provider, operation=operation, outcome=outcome)
