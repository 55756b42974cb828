"""Two purges at once (two clusters, or the schedule and the command): each row is purged
by one of them, and a row the other holds is left for the next run."""

from __future__ import annotations

import threading

from django.db import connection, transaction

from calls.models import Call
from otto import retention
from otto.models import Company, PendingFileDeletion
from tests.retention.conftest import aged_call, set_windows, stored_keys


def in_thread(target, *args):
    def run():
        try:
            target(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_two_runs_at_once_purge_each_recording_once(transactional_db, s3):
    acme = set_windows(Company.objects.create(name="Acme", slug="acme"), recordings=30)
    for _ in range(12):
        aged_call(acme, 31)
    results = []
    start = threading.Barrier(2)

    def run():
        start.wait(10)
        results.append(retention.purge_company(acme, batch_size=2))

    threads = [in_thread(run), in_thread(run)]
    for thread in threads:
        thread.join(60)

    assert sum(r.counts["recordings"] for r in results) == 12
    assert sum(r.counts.get(retention.FILES_DELETED, 0) for r in results) == 12
    assert stored_keys(s3) == []
    assert not Call.objects.exclude(recording="").exists()
    assert not PendingFileDeletion.objects.exists()


def test_a_call_another_transaction_holds_is_left_for_the_next_run(transactional_db, s3):
    acme = set_windows(Company.objects.create(name="Acme", slug="acme"), recordings=30)
    held = aged_call(acme, 31)
    aged_call(acme, 31)
    locked, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            Call.objects.select_for_update().get(pk=held.pk)
            locked.set()
            release.wait(30)

    holder = in_thread(hold)
    assert locked.wait(10)
    try:
        first = retention.purge_company(acme)
    finally:
        release.set()
        holder.join(30)

    assert first.counts["recordings"] == 1
    assert stored_keys(s3) == [held.recording.name]
    second = retention.purge_company(acme)
    assert second.counts["recordings"] == 1
    assert stored_keys(s3) == []
