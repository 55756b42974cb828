import os
import socket
from datetime import timedelta

from django.utils import timezone
from django_q.conf import Conf

from otto.idempotency import purge_expired_keys
from otto.models import QueueHeartbeat
from otto.queues import task


@task
def heartbeat(queue: str) -> None:
    """Proves a worker is taking tasks off ``queue``; /health/workers reports its age."""
    QueueHeartbeat.objects.update_or_create(
        queue=queue,
        defaults={
            "cluster": Conf.CLUSTER_NAME,
            "beat_at": timezone.now(),
            "host": socket.gethostname()[:255],
            "pid": os.getpid(),
        },
    )


@task
def prune_task_results() -> None:
    """Delete old django-q result rows; the cluster keeps all of them (save_limit=0)."""
    from django_q.models import Task

    now = timezone.now()
    Task.objects.filter(success=True, stopped__lt=now - timedelta(days=7)).delete()
    Task.objects.filter(success=False, stopped__lt=now - timedelta(days=30)).delete()


@task
def purge_idempotency_keys() -> None:
    """Forget stored POST responses older than IDEMPOTENCY_TTL_DAYS."""
    purge_expired_keys()
