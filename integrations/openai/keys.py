"""Rotation over several OpenAI API keys, shared by every thread of the process.

Several keys spread load across rate limits. A key that answers 429 cools down (for the
``Retry-After`` the API sent, else :data:`DEFAULT_COOLDOWN`) and is skipped until then; a
key that answers 401 has been revoked and is dropped until the process restarts. Keys are
never logged: :func:`fingerprint` is what appears in logs.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from integrations.errors import ProviderError

logger = logging.getLogger(__name__)

STRATEGIES = ("round_robin", "random", "least_used")
DEFAULT_COOLDOWN = 30.0


def fingerprint(key: str) -> str:
    """A short, non-reversible name for a key: safe to log, stable across processes."""
    return "key#" + hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass
class _KeyState:
    key: str
    uses: int = 0
    cool_until: float = 0.0
    dead: bool = False


class KeyRing:
    """Hands out keys by ``strategy``; thread-safe. ``clock`` is injectable for tests."""

    def __init__(
        self,
        keys: Sequence[str],
        strategy: str = "round_robin",
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown key rotation strategy {strategy!r}; use one of {STRATEGIES}")
        self.strategy = strategy
        self._states = [_KeyState(key) for key in dict.fromkeys(k for k in keys if k)]
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - load spreading, not security
        self._next = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._states)

    def acquire(self) -> str:
        """The next usable key, or ProviderError when none is (all cooling down or revoked)."""
        with self._lock:
            now = self._clock()
            alive = [s for s in self._states if not s.dead]
            usable = [s for s in alive if s.cool_until <= now]
            if not usable:
                raise self._exhausted(alive, now)
            if self.strategy == "random":
                chosen = self._rng.choice(usable)
            elif self.strategy == "least_used":
                chosen = min(usable, key=lambda s: s.uses)  # ties go to configuration order
            else:
                chosen = self._round_robin(usable)
            chosen.uses += 1
            return chosen.key

    def _round_robin(self, usable: list[_KeyState]) -> _KeyState:
        # Walk the configured order from the cursor, so skipping a cooling key does not
        # shift the rotation of the others.
        count = len(self._states)
        for offset in range(count):
            state = self._states[(self._next + offset) % count]
            if state in usable:
                self._next = (self._states.index(state) + 1) % count
                return state
        return usable[0]  # unreachable: usable is a non-empty subset of _states

    def _exhausted(self, alive: list[_KeyState], now: float) -> ProviderError:
        if not self._states:
            return ProviderError("openai", "no OpenAI API key is configured", permanent=True)
        if not alive:
            return ProviderError(
                "openai", "every OpenAI API key was rejected (401)", permanent=True, status=401
            )
        wait = max(0.0, min(s.cool_until for s in alive) - now)
        return ProviderError(
            "openai",
            f"every OpenAI API key is cooling down after a 429; next in {wait:.1f}s",
            permanent=False,
            status=429,
            retry_after=wait,
        )

    def cool_down(self, key: str, retry_after: float | None = None) -> None:
        """Skip ``key`` for ``retry_after`` seconds (the API's Retry-After) or the default."""
        seconds = retry_after if retry_after and retry_after > 0 else DEFAULT_COOLDOWN
        with self._lock:
            for state in self._states:
                if state.key == key:
                    state.cool_until = max(state.cool_until, self._clock() + seconds)
        logger.warning("OpenAI %s rate limited; cooling down for %.1fs", fingerprint(key), seconds)

    def revoke(self, key: str) -> None:
        """Drop ``key`` for the life of the process (it answered 401)."""
        with self._lock:
            for state in self._states:
                if state.key == key:
                    state.dead = True
        logger.error("OpenAI %s rejected (401); removed from rotation", fingerprint(key))

    def unavailable(self) -> ProviderError | None:
        """Why no key can be used right now, or None when one can (nothing is acquired)."""
        with self._lock:
            now = self._clock()
            alive = [s for s in self._states if not s.dead]
            if any(s.cool_until <= now for s in alive):
                return None
            return self._exhausted(alive, now)


_rings: dict[tuple[tuple[str, ...], str], KeyRing] = {}
_rings_lock = threading.Lock()


def get_keyring(keys: Sequence[str], strategy: str) -> KeyRing:
    """The process-wide ring for this configuration (a new one if settings change)."""
    identity = (tuple(keys), strategy)
    with _rings_lock:
        ring = _rings.get(identity)
        if ring is None:
            ring = _rings[identity] = KeyRing(keys, strategy)
        return ring


def reset_keyrings() -> None:
    """Forget cool-downs and revocations (tests; a deploy does the same by restarting)."""
    with _rings_lock:
        _rings.clear()
