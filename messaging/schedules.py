"""Deferred and retried sends go out when due (Redis delivers a task at most once)."""

from messaging.tasks import (
    dispatch_due_ai_calls,
    dispatch_due_followups,
    dispatch_due_messages,
    dispatch_due_recoveries,
)
from otto.queues import Queue
from otto.schedules import Job, register

register(Job("dispatch-due-messages", dispatch_due_messages, Queue.FOLLOWUPS, minutes=1))
# Missed-call recovery's due steps (messaging.recovery claims each one).
register(Job("recovery-cadence", dispatch_due_recoveries, Queue.FOLLOWUPS, minutes=1))
# AI calls deferred by quiet hours, and Bland sends whose answer was lost (messaging.voice).
register(Job("dispatch-due-ai-calls", dispatch_due_ai_calls, Queue.FOLLOWUPS, minutes=1))
# Approved (or auto-sent) follow-ups whose time came (messaging.followups claims each one).
register(Job("followup-send", dispatch_due_followups, Queue.FOLLOWUPS, minutes=1))
