"""Fixtures shared by the provider client and sandbox tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]


class Outbox:
    """The webhooks the sandbox sent to the app, captured instead of POSTed."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.items: list[Delivery] = []
        self._lock = threading.Lock()

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        with self._lock:
            self.items.append(Delivery(url, body, dict(headers)))
        return self.status

    def to(self, suffix: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.items if d.url.endswith(suffix)]


@pytest.fixture
def outbox(sandbox) -> Outbox:
    """Captures the sandbox's outbound webhooks; the app 'answers' 200."""
    box = Outbox()
    sandbox.outbound = box
    return box
