"""The pipeline's schedules (docs/operations.md): Redis delivers at most once, CallRail
never resends a webhook and a Shunya webhook may never come, so PostgreSQL, CallRail's API
and Shunya's jobs are swept for what was lost."""

from calls.tasks import poll_shunya_jobs, reconcile_callrail, retry_due_calls
from otto.queues import Queue
from otto.schedules import Job, register

register(Job("retry-due-calls", retry_due_calls, Queue.DEFAULT, minutes=1))
register(Job("reconcile-callrail", reconcile_callrail, Queue.DEFAULT, minutes=15))
register(Job("poll-shunya-jobs", poll_shunya_jobs, Queue.SHUNYA, minutes=1))
