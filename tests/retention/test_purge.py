"""The retention purge (otto.retention): exactly what is past each tenant's window goes, in
the database and in storage, in batches, once; a failed storage delete is kept and retried."""

from __future__ import annotations

import pytest
import time_machine
from django.core.files.storage import storages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analysis.models import CallAnalysis
from calls import search
from calls.models import Call, Transcript
from integrations.models import WebhookEvent
from messaging.models import ConsentEvent, Message, Thread
from otto import retention
from otto.models import PendingFileDeletion, RetentionRun
from tests.retention.conftest import (
    DAY,
    SAID,
    aged_call,
    ai_call,
    set_windows,
    stored_keys,
    text_message,
    transcribe,
    webhook_event,
)

Status = WebhookEvent.Status


def test_recordings_past_the_window_leave_storage_and_their_calls(acme, globex, s3):
    # given: Acme keeps recordings 30 days; Globex sets no window
    set_windows(acme, recordings=30)
    old = aged_call(acme, 31)
    recent = aged_call(acme, 29)
    in_pipeline = aged_call(acme, 60, stage=Call.Stage.TRANSCRIBING)
    globex_old = aged_call(globex, 400)
    before = stored_keys(s3)
    assert len(before) == 4

    # when
    purge = retention.purge_company(acme)

    # then: only the old, settled call lost its audio, in storage and on its row
    assert stored_keys(s3) == sorted(c.recording.name for c in (recent, in_pipeline, globex_old))
    old.refresh_from_db()
    assert old.recording.name == "" and old.recording_purged_at is not None
    # What was stored is still described; only the audio is gone.
    assert old.recording_size is not None
    for kept in (recent, in_pipeline, globex_old):
        kept.refresh_from_db()
        assert kept.recording and kept.recording_purged_at is None
    assert purge.counts["recordings"] == 1
    assert purge.counts[retention.FILES_DELETED] == 1
    assert not PendingFileDeletion.objects.exists()
    # Globex has no window: it is not even visited.
    assert list(retention.companies_with_work()) == [acme]


def test_each_tenant_has_its_own_window(acme, globex, s3):
    set_windows(acme, recordings=30)
    set_windows(globex, recordings=60)
    acme_call, globex_call = aged_call(acme, 45), aged_call(globex, 45)

    for company in (acme, globex):
        retention.purge_company(company)

    acme_call.refresh_from_db()
    globex_call.refresh_from_db()
    assert acme_call.recording_purged_at is not None
    assert globex_call.recording.name in stored_keys(s3)


def test_a_call_is_kept_until_its_window_passes(acme, s3):
    set_windows(acme, recordings=30)
    call = aged_call(acme, 0)

    with time_machine.travel(timezone.now() + 29 * DAY):
        assert retention.purge_company(acme).counts["recordings"] == 0
    with time_machine.travel(timezone.now() + 31 * DAY):
        assert retention.purge_company(acme).counts["recordings"] == 1

    assert stored_keys(s3) == []
    call.refresh_from_db()
    assert call.recording_purged_at is not None


def test_transcripts_are_blanked_and_no_longer_searchable(acme, globex, s3):
    set_windows(acme, transcripts=90)
    old, recent = aged_call(acme, 91), aged_call(acme, 10)
    analysing = aged_call(acme, 120, stage=Call.Stage.ANALYZING)
    globex_old = aged_call(globex, 400)
    for call in (old, recent, analysing, globex_old):
        transcribe(call)

    purge = retention.purge_company(acme)

    transcript = Transcript.objects.get(call=old)
    assert (transcript.text, transcript.utterances) == ("", [])
    assert transcript.purged_at is not None and transcript.word_count == 7
    analysis = CallAnalysis.objects.get(call=old)
    assert analysis.objections == [
        {"category": "price", "quote": "", "utterance": 0, "resolved": True}
    ]
    # The analyser's reading of the call stays.
    assert analysis.summary and analysis.booking_status == "booked"
    found = search.search(Call.objects.filter(company=acme), "boiler")
    assert set(found) == {recent, analysing}
    for kept in (recent, analysing, globex_old):
        assert Transcript.objects.get(call=kept).text == SAID
        assert CallAnalysis.objects.get(call=kept).objections[0]["quote"] == SAID
    assert (purge.counts["transcripts"], purge.counts["analysis_quotes"]) == (1, 1)
    # The recordings window is blank: the audio stays.
    assert len(stored_keys(s3)) == 4


def test_settled_webhook_bodies_are_blanked_and_their_rows_kept(acme, globex):
    set_windows(acme, webhook_bodies=14)
    processed = webhook_event(acme, 15, Status.PROCESSED)
    duplicate = webhook_event(acme, 15, Status.DUPLICATE)
    recent = webhook_event(acme, 13, Status.PROCESSED)
    waiting = webhook_event(acme, 15, Status.RECEIVED)
    failed = webhook_event(acme, 15, Status.FAILED)
    globex_old = webhook_event(globex, 400, Status.PROCESSED)
    unmatched = webhook_event(None, 400, Status.UNMATCHED)

    purge = retention.purge_company(acme)

    for event in (processed, duplicate):
        event.refresh_from_db()
        assert event.body == ""
        assert (event.dedupe_key, event.headers, event.status) != ("", {}, "")
    for event in (recent, waiting, failed, globex_old, unmatched):
        event.refresh_from_db()
        assert event.body
    assert purge.counts["webhook_bodies"] == 2


def test_message_bodies_are_blanked_but_the_consent_ledger_and_unsent_texts_stay(acme, globex):
    set_windows(acme, messages=60)
    old = text_message(acme, 61)
    stop = text_message(acme, 61, body="STOP")
    ConsentEvent.objects.create(
        company=acme,
        phone=stop.from_number,
        channel=ConsentEvent.Channel.SMS,
        action=ConsentEvent.Action.OPT_OUT,
        source=ConsentEvent.Source.KEYWORD,
        message=stop,
    )
    scheduled = text_message(acme, 61, status=Message.Status.SCHEDULED)
    recent = text_message(acme, 59)
    globex_old = text_message(globex, 400)

    purge = retention.purge_company(acme)

    old.refresh_from_db()
    assert (old.body, old.media, old.status) == ("", [], Message.Status.DELIVERED)
    assert Thread.objects.get(pk=old.thread_id).last_message_preview == ""
    for kept in (stop, scheduled, recent, globex_old):
        kept.refresh_from_db()
        assert kept.body and kept.media
    assert Thread.objects.get(pk=recent.thread_id).last_message_preview
    assert ConsentEvent.objects.get().message == stop
    assert (purge.counts["messages"], purge.counts["message_previews"]) == (1, 3)


def test_ai_call_transcripts_go_with_the_transcript_window_and_the_record_stays(acme, globex):
    set_windows(acme, transcripts=30)
    set_windows(globex, transcripts=30)

    old, recent, globex_recent = ai_call(acme, 31), ai_call(acme, 29), ai_call(globex, 29)

    purge = retention.purge_company(acme)

    old.refresh_from_db()
    assert (old.transcript, old.summary, old.outcome) == ("", "", "completed")
    for kept in (recent, globex_recent):
        kept.refresh_from_db()
        assert kept.transcript and kept.summary
    assert purge.counts["ai_call_transcripts"] == 1


def test_more_rows_than_a_batch_are_purged_a_batch_per_statement(acme, s3):
    set_windows(acme, recordings=30, messages=30)
    calls = [aged_call(acme, 31) for _ in range(7)]
    for _ in range(5):
        text_message(acme, 31)

    with CaptureQueriesContext(connection) as queries:
        purge = retention.purge_company(acme, batch_size=3)

    assert purge.counts["recordings"] == 7 and purge.counts["messages"] == 5
    assert stored_keys(s3) == []
    assert not Call.objects.filter(pk__in=[c.pk for c in calls]).exclude(recording="").exists()
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    call_updates = [sql for sql in updates if '"calls_call"' in sql]
    message_updates = [sql for sql in updates if '"messaging_message"' in sql]
    # 7 calls in batches of 3, 5 messages in batches of 3: one statement per batch.
    assert (len(call_updates), len(message_updates)) == (3, 2)


def test_a_second_run_purges_nothing_and_changes_nothing(acme, s3):
    set_windows(acme, recordings=30, transcripts=30, webhook_bodies=30, messages=30)
    call = aged_call(acme, 31)
    transcribe(call)
    webhook_event(acme, 31, Status.PROCESSED)
    text_message(acme, 31)
    ai_call(acme, 31)
    first = retention.purge_company(acme)
    call.refresh_from_db()
    stamp = call.updated_at

    second = retention.purge_company(acme)

    assert all(first.counts.values()) and set(first.counts) >= {
        "recordings",
        "transcripts",
        "analysis_quotes",
        "webhook_bodies",
        "messages",
        "message_previews",
    }
    assert second.counts == dict.fromkeys(
        (
            "ai_call_transcripts",
            "analysis_quotes",
            "message_previews",
            "messages",
            "recordings",
            "transcripts",
            "webhook_bodies",
        ),
        0,
    )
    call.refresh_from_db()
    assert call.updated_at == stamp
    assert RetentionRun.objects.count() == 2


def test_a_dry_run_counts_and_writes_nothing(acme, s3):
    set_windows(acme, recordings=30, messages=30)
    call = aged_call(acme, 31)
    message = text_message(acme, 31)

    purge = retention.purge_company(acme, dry_run=True)

    assert (purge.counts["recordings"], purge.counts["messages"]) == (1, 1)
    assert stored_keys(s3) == [call.recording.name]
    call.refresh_from_db()
    message.refresh_from_db()
    assert call.recording and message.body
    assert not RetentionRun.objects.exists() and not PendingFileDeletion.objects.exists()


def test_a_failed_storage_delete_is_recorded_and_retried_by_the_next_run(acme, s3, monkeypatch):
    set_windows(acme, recordings=30)
    failing = aged_call(acme, 31)
    aged_call(acme, 32)
    failing_name = failing.recording.name
    # The storage instance itself: default_storage is a lazy proxy that settings re-arm.
    storage = storages["default"]
    real_delete = storage.delete

    def delete(name):
        if name == failing_name:
            raise OSError("S3 is having a bad day")
        real_delete(name)

    monkeypatch.setattr(storage, "delete", delete)

    first = retention.purge_company(acme)

    # Neither call points at audio any more; the file that could not go is still tracked.
    assert not Call.objects.exclude(recording="").exists()
    assert stored_keys(s3) == [failing_name]
    [pending] = PendingFileDeletion.objects.all()
    assert (pending.name, pending.kind, pending.attempts) == (failing_name, "recordings", 1)
    assert "S3 is having a bad day" in pending.last_error
    run = RetentionRun.objects.get()
    assert run.counts == {"recordings": 2, "files_deleted": 1, "files_failed": 1}
    assert run.finished_at is not None
    [error] = run.errors
    assert failing_name in error and "bad day" in error
    assert first.errors == run.errors

    # when storage recovers
    monkeypatch.setattr(storage, "delete", real_delete)
    second = retention.purge_company(acme)

    assert stored_keys(s3) == []
    assert not PendingFileDeletion.objects.exists()
    assert second.counts == {"recordings": 0, "files_deleted": 1}
    assert second.errors == []


def test_a_tenant_with_only_files_left_to_delete_is_still_visited(acme, s3):
    set_windows(acme, recordings=30)
    aged_call(acme, 31)
    acme_keys = stored_keys(s3)
    PendingFileDeletion.objects.create(company=acme, kind="recordings", name=acme_keys[0])
    set_windows(acme, recordings=None)

    assert list(retention.companies_with_work()) == [acme]


def test_a_purger_that_fails_is_recorded_and_the_others_still_run(acme, monkeypatch):
    set_windows(acme, webhook_bodies=14, messages=14)
    webhook_event(acme, 15, Status.PROCESSED)
    text_message(acme, 15)

    def broken(purge):
        raise RuntimeError("database went away")

    monkeypatch.setitem(
        retention._purgers, "messages", retention.Purger("messages", "messages", broken)
    )

    purge = retention.purge_company(acme)

    assert purge.counts["webhook_bodies"] == 1
    assert "messages" not in purge.counts
    assert RetentionRun.objects.get().errors == ["messages: RuntimeError: database went away"]


def test_a_released_file_a_call_points_at_again_is_kept(acme, s3, monkeypatch):
    # given: the purge released a recording whose delete failed, and ops then re-fetched
    # the call's audio, which lands at the same path
    set_windows(acme, recordings=30)
    call = aged_call(acme, 31)
    name = call.recording.name
    storage = storages["default"]
    real_delete = storage.delete

    def refuse(name):
        raise OSError("storage down")

    monkeypatch.setattr(storage, "delete", refuse)
    retention.purge_company(acme)
    monkeypatch.setattr(storage, "delete", real_delete)
    Call.objects.filter(pk=call.pk).update(recording=name, recording_purged_at=None)
    # (and the tenant dropped its window, so only the retry has anything to do)
    set_windows(acme, recordings=None)

    # when the next run retries the delete
    purge = retention.purge_company(acme)

    # then the file is the call's again: kept, and no longer tracked for deletion
    assert stored_keys(s3) == [name]
    assert not PendingFileDeletion.objects.exists()
    assert retention.FILES_DELETED not in purge.counts


def test_a_call_whose_transcript_was_purged_is_not_reanalysed(acme, settings):
    from analysis.services import ReanalysisRefused, reanalyze_call

    settings.OPENAI_API_KEYS = ["sk-test"]
    set_windows(acme, transcripts=30)
    call = aged_call(acme, 31, stage=Call.Stage.ANALYZED)
    transcribe(call)
    retention.purge_company(acme)

    with pytest.raises(ReanalysisRefused, match="retention"):
        reanalyze_call(call)


def test_the_message_purge_reads_the_tenant_index(acme):
    from messaging.retention import messages_past_window

    purge = retention.Purge(company=acme, now=timezone.now(), cutoff=timezone.now() - 30 * DAY)
    with connection.cursor() as cursor:
        # A handful of rows would be read by a sequential scan whatever the indexes.
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = messages_past_window(purge).explain()

    assert "messaging_msg_company_idx" in plan
