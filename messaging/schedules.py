"""Deferred and retried sends go out when due (Redis delivers a task at most once)."""

from messaging.tasks import dispatch_due_messages
from otto.queues import Queue
from otto.schedules import Job, register

register(Job("dispatch-due-messages", dispatch_due_messages, Queue.FOLLOWUPS, minutes=1))
