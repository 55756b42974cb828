"""Messaging tasks: ids in, one service each."""

from __future__ import annotations

from django.utils import timezone

from messaging import followups, recovery, selectors, sending, voice
from otto.queues import Queue, enqueue, task


@task
def deliver_message(message_id: int) -> str | None:
    return sending.deliver(message_id)


@task
def dispatch_due_messages() -> int:
    """Every minute: deferred messages whose window opened, retries that are due, and
    sends whose worker died (their claim went stale)."""
    ids = selectors.due_messages(timezone.now())
    ids += selectors.stale_sends(timezone.now() - sending.SEND_DEADLINE)
    for message_id in ids:
        enqueue(Queue.FOLLOWUPS, deliver_message, message_id)
    return len(ids)


@task
def run_recovery_step(recovery_id: int) -> str | None:
    return recovery.run_step(recovery_id)


@task
def dispatch_due_recoveries() -> int:
    """Every minute: the recoveries with a step due (each claims it when it runs)."""
    ids = selectors.due_recoveries(timezone.now())
    for recovery_id in ids:
        enqueue(Queue.FOLLOWUPS, run_recovery_step, recovery_id)
    return len(ids)


@task
def place_ai_call(ai_call_id: int) -> str | None:
    return voice.place(ai_call_id)


@task
def dispatch_due_ai_calls() -> int:
    """Every minute: AI calls whose window opened or whose retry is due; and calls whose
    placing got no answer from Bland nor a webhook in time are given up (never resent)."""
    now = timezone.now()
    voice.give_up_unanswered(now)
    ids = voice.due_calls(now)
    for ai_call_id in ids:
        enqueue(Queue.FOLLOWUPS, place_ai_call, ai_call_id)
    return len(ids)


@task
def send_followup(followup_id: int) -> str | None:
    return followups.run_due(followup_id)


@task
def dispatch_due_followups() -> int:
    """Every minute: the follow-ups whose time came (each claims itself when it runs)."""
    ids = selectors.due_followups(timezone.now())
    for followup_id in ids:
        enqueue(Queue.FOLLOWUPS, send_followup, followup_id)
    return len(ids)
