"""Fixtures for the audit log and erasure: the pipeline's calls of sandbox scenarios
(real transcription, analysis and outcomes), shared with the outcomes' tests."""

from __future__ import annotations

from tests.appointments.conftest import (  # noqa: F401 -- fixtures shared with outcomes' tests
    Worker,
    _recordings_in_tmp,
    analysed_call,
    run_tasks,
    worker,
)
from tests.calls_api.conftest import local_media  # noqa: F401 -- recordings on local storage
