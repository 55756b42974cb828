"""Analysis' seam with calls' pipeline: the handler of calls that reach ``transcribed``
(registered in :meth:`analysis.apps.AnalysisConfig.ready`)."""

from __future__ import annotations

from calls.models import Call
from otto.queues import Queue, enqueue


def start_analysis(call: Call) -> None:
    """Enqueue the call's analysis on queue ``analysis`` once the transaction that moved
    it to ``transcribed`` commits. Its attempts restart: transcription's were its own."""
    from analysis import tasks  # tasks imports the services that import calls' pipeline

    Call.objects.filter(pk=call.pk).update(attempts=0)
    call.attempts = 0
    enqueue(Queue.ANALYSIS, tasks.analyze_call, call.pk)
