"""What every provider-backed stage shares: ``submit`` returns a result or a pending job.

A stage that calls a provider (transcription today; analysis with ``ANALYZER`` next) picks
an implementation from settings and calls its ``submit(call)``. A synchronous provider
(Deepgram, OpenAI) answers with the finished result, which the stage stores at once. An
asynchronous one (Shunya) answers with a :class:`PendingJob`: the stage holds the call
until ``wait_until`` and runs the job's ``record`` in the transaction that extends its
hold, and the provider's webhook or the poller completes the stage later. So no caller
branches on a provider's name: only the registry that maps a name to an implementation
knows them.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PendingJob:
    """Work a provider accepted and finishes later (its webhook, or the poller)."""

    provider: str
    external_id: str
    # The call is held in its in-progress stage (its lease) until then.
    wait_until: datetime.datetime
    # The adapter's own record of the job (e.g. a ShunyaJob row), written in the
    # transaction that extends the call's lease, so a worker that lost its claim records
    # nothing.
    record: Callable[[], Any]
