"""Inbox tasks. Each takes an id and calls one service (STYLE.md: thin edges)."""

from __future__ import annotations

from integrations import services
from otto.queues import task


def _mark_unqueued(event_id: int) -> None:
    # Looked up when a push fails, not at import: services imports this module back.
    services.mark_unqueued(event_id)


@task(unqueued=_mark_unqueued)
def process_webhook_event(event_id: int) -> None:
    """Process one stored webhook event; safe to run twice (it claims the event first)."""
    services.process_event(int(event_id))


@task
def reap_webhook_events() -> None:
    """Re-enqueue what Redis lost (delivery there is at-most-once); see services.reap_events."""
    services.reap_events()


@task
def purge_webhook_events() -> None:
    """Drop old unmatched and failed events (see services.purge_events)."""
    services.purge_events()
