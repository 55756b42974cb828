"""The daily purge-retention schedule and ``manage.py purge_retention``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_q.signing import SignedPackage

from calls.models import Call
from otto.models import RetentionRun
from otto.queues import Queue
from otto.schedules import registry
from otto.tasks import purge_company_retention, purge_retention
from tests.retention.conftest import aged_call, set_windows, stored_keys, text_message


def test_the_purge_is_scheduled_daily_off_the_ingest_queue():
    job = registry()["purge-retention"]

    assert (job.func, job.queue, job.minutes) == (purge_retention, Queue.INDEXING, 24 * 60)


def test_the_schedule_enqueues_one_purge_per_tenant_with_a_window(
    acme, globex, django_capture_on_commit_callbacks, broker_redis
):
    set_windows(acme, messages=30)
    inactive = set_windows(globex, messages=30)
    inactive.is_active = False
    inactive.save()

    with django_capture_on_commit_callbacks(execute=True):
        purge_retention()

    packages = [
        SignedPackage.loads(raw) for raw in broker_redis.lrange("django_q:default:q", 0, -1)
    ]
    assert [(p["func"], p["args"]) for p in packages] == [
        ("otto.tasks.purge_company_retention", (acme.pk,))
    ]


def test_the_tenant_task_purges_and_records_a_run(acme, s3):
    set_windows(acme, recordings=30)
    aged_call(acme, 31)

    purge_company_retention(acme.pk)

    assert stored_keys(s3) == []
    run = RetentionRun.objects.get()
    assert run.company == acme and run.counts["recordings"] == 1


def test_the_command_prints_what_it_purged(acme, globex, s3):
    set_windows(acme, recordings=30, messages=30)
    set_windows(globex, messages=30)
    aged_call(acme, 31)
    text_message(acme, 31)
    text_message(globex, 31)
    out = StringIO()

    call_command("purge_retention", "--company", "acme", stdout=out)

    assert out.getvalue().splitlines() == [
        "acme: purged files_deleted 1, message_previews 1, messages 1, recordings 1"
    ]
    assert list(RetentionRun.objects.values_list("company__slug", flat=True)) == ["acme"]


def test_the_command_dry_run_writes_nothing(acme, s3):
    set_windows(acme, recordings=30)
    call = aged_call(acme, 31)
    out = StringIO()

    call_command("purge_retention", "--dry-run", stdout=out)

    assert out.getvalue().splitlines() == ["acme: would purge recordings 1"]
    assert stored_keys(s3) == [call.recording.name]
    assert Call.objects.exclude(recording="").count() == 1
    assert not RetentionRun.objects.exists()


def test_the_command_refuses_an_unknown_company(acme):
    with pytest.raises(CommandError, match="nope"):
        call_command("purge_retention", "--company", "nope")
