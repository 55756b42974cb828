"""Analysis tasks. Each takes ids and calls one service; each is safe to run twice,
because the service claims its call first."""

from __future__ import annotations

from analysis import services
from calls import sweeps
from otto.queues import task


@task(unqueued=sweeps.mark_unqueued)
def analyze_call(call_id: int) -> None:
    """Queue ``analysis``: analyse one transcribed call."""
    services.analyze_call(int(call_id))
