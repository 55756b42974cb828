"""The inbox's schedule: Redis delivers at most once, so the database is swept for events
whose task was lost (docs/webhooks.md)."""

from integrations.tasks import reap_webhook_events
from otto.queues import Queue
from otto.schedules import Job, register

register(Job("reap-webhook-events", reap_webhook_events, Queue.DEFAULT, minutes=1))
