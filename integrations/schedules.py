"""The inbox's schedules: Redis delivers at most once, so the database is swept for events
whose task was lost; unmatched and failed events are purged after a short window
(docs/webhooks.md)."""

from integrations.tasks import purge_webhook_events, reap_webhook_events
from otto.queues import Queue
from otto.schedules import Job, register

register(Job("reap-webhook-events", reap_webhook_events, Queue.DEFAULT, minutes=1))
register(Job("purge-webhook-events", purge_webhook_events, Queue.DEFAULT, minutes=24 * 60))
