"""How every provider client reports failure, and reports each call's latency and outcome.

The adapters sit below the core (DESIGN §2), so they cannot import ``otto.metrics``: the
core subscribes to every provider call with :func:`observe_provider_calls` in its
``AppConfig.ready()``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

# observer(provider, operation, outcome, seconds)
ProviderCallObserver = Callable[[str, str, str, float], None]

_observers: list[ProviderCallObserver] = []


def observe_provider_calls(observer: ProviderCallObserver) -> None:
    """Have ``observer`` told about every provider call :func:`track` measures."""
    if observer not in _observers:
        _observers.append(observer)


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
        seconds = time.perf_counter() - started
        for observer in _observers:
            try:
                observer(provider, operation, outcome, seconds)
            except Exception:
                # Metrics must never turn a provider's answer into a failure.
                logger.exception("provider call observer %r failed", observer)
