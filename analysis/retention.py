"""What the transcript's retention window removes from analyses (otto.retention,
docs/retention.md): the objections' verbatim quotes, which are transcript text. The rest
(summary, lead quality, booking, actions, the utterance indexes cited) is the analyser's
reading of the call, the tenant's business record, and stays."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from analysis.models import CallAnalysis
from calls.retention import past_transcript_window
from otto.retention import Purge


def purge_quotes(purge: Purge) -> int:
    # The same calls as the transcripts' purge: a call still being analysed keeps both.
    rows = past_transcript_window(
        CallAnalysis.objects.filter(company=purge.company, quotes_purged_at__isnull=True), purge
    )

    def apply(rows: QuerySet[CallAnalysis], pks: list[Any]) -> int:
        analyses = list(
            rows.filter(pk__in=pks)
            .select_for_update(skip_locked=True, of=("self",))
            .only("pk", "objections")
        )
        for analysis in analyses:
            analysis.objections = [
                {**objection, "quote": ""} if isinstance(objection, dict) else objection
                for objection in analysis.objections or []
            ]
            analysis.quotes_purged_at = purge.now
        return CallAnalysis.objects.bulk_update(analyses, ["objections", "quotes_purged_at"])

    return purge.in_batches(rows, apply)
