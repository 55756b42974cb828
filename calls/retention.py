"""What the retention purge removes from calls (otto.retention, docs/retention.md): the
recording's audio, and the transcript's text, utterances and search terms. The call row
stays, with ``recording_purged_at`` / ``Transcript.purged_at`` saying what went.

A call still in the pipeline keeps what the next stage needs: its audio until it is
transcribed, its transcript until it is analysed.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet

from calls import search
from calls.models import Call, Transcript
from otto.retention import Purge

S = Call.Stage
# Stages that still need the audio (ingest, transcription).
NEEDS_RECORDING = (S.RECEIVED, S.INGESTING, S.RECORDED, S.TRANSCRIBING)
# Stages that still need the transcript (analysis).
NEEDS_TRANSCRIPT = (*NEEDS_RECORDING, S.TRANSCRIBED, S.ANALYZING)


def purge_recordings(purge: Purge) -> int:
    """Stop calls pointing at audio older than the window, then delete the audio."""
    rows = (
        Call.objects.filter(company=purge.company)
        .exclude(recording="")
        .exclude(stage__in=NEEDS_RECORDING)
        .filter(purge.older_than("started_at", "created_at"))
    )

    def apply(rows: QuerySet[Call], pks: list[Any]) -> int:
        # Locked, so an ingest re-fetching one of them waits or is skipped (next run).
        found = list(
            rows.filter(pk__in=pks)
            .select_for_update(skip_locked=True)
            .values_list("pk", "recording")
        )
        if not found:
            return 0
        Call.objects.filter(pk__in=[pk for pk, _ in found]).update(
            recording="", recording_purged_at=purge.now
        )
        purge.release_files(name for _, name in found)
        return len(found)

    return purge.in_batches(rows, apply)


def past_transcript_window[M: Model](rows: QuerySet[M], purge: Purge) -> QuerySet[M]:
    """``rows`` (with a ``call``) whose call is past the transcript window and no longer
    needs its transcript: what the transcript's words, wherever kept, are purged from."""
    return rows.exclude(call__stage__in=NEEDS_TRANSCRIPT).filter(
        purge.older_than("call__started_at", "call__created_at")
    )


def purge_transcripts(purge: Purge) -> int:
    """Blank the text and utterances of transcripts of calls older than the window, and
    recompute those calls' search vectors without them."""
    rows = past_transcript_window(
        Transcript.objects.filter(company=purge.company, purged_at__isnull=True), purge
    )

    def apply(rows: QuerySet[Transcript], pks: list[Any]) -> int:
        calls = list(
            rows.filter(pk__in=pks)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("call_id", flat=True)
        )
        if not calls:
            return 0
        purged = Transcript.objects.filter(call_id__in=calls, purged_at__isnull=True).update(
            text="", utterances=[], purged_at=purge.now
        )
        for call_id in calls:
            search.index_call(call_id)
        return purged

    return purge.in_batches(rows, apply)


def recordings_in_use(names: list[str]) -> set[str]:
    """Released recordings a call points at again: a re-fetch after the purge saved new
    audio at the call's usual path before the old file's deletion ran."""
    return set(Call.objects.filter(recording__in=names).values_list("recording", flat=True))
