import os
import socket
from datetime import timedelta

from django.utils import timezone
from django_q.conf import Conf

from otto import retention
from otto.idempotency import purge_expired_keys
from otto.models import Company, QueueHeartbeat
from otto.queues import Queue, enqueue, task


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


@task
def purge_retention() -> None:
    """One purge task per tenant with a retention window (schedule, daily)."""
    for company_id in retention.companies_with_work().values_list("pk", flat=True):
        enqueue(Queue.INDEXING, purge_company_retention, company_id)


@task
def purge_company_retention(company_id: int) -> None:
    """Purge what is past the tenant's retention windows (otto.retention)."""
    company = Company.objects.filter(pk=company_id, is_active=True).first()
    if company is not None:
        retention.purge_company(company)
