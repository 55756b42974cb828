"""Ingest's schedules (docs/operations.md): Redis delivers at most once and CallRail never
resends a webhook, so PostgreSQL and CallRail's API are swept for what was lost."""

from calls.tasks import reconcile_callrail, retry_due_calls
from otto.queues import Queue
from otto.schedules import Job, register

register(Job("retry-due-calls", retry_due_calls, Queue.DEFAULT, minutes=1))
register(Job("reconcile-callrail", reconcile_callrail, Queue.DEFAULT, minutes=15))
