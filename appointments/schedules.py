"""Outcomes' schedules (docs/operations.md): failed geocodes are retried with backoff."""

from appointments.tasks import retry_geocodes
from otto.queues import Queue
from otto.schedules import Job, register

register(Job("retry-geocodes", retry_geocodes, Queue.FOLLOWUPS, minutes=5))
