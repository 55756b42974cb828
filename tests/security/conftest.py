"""The call-ingest fixtures (CallRail-configured tenants, the stand-in worker)."""

from tests.calls.conftest import (  # noqa: F401 - pytest finds fixtures by name
    _recordings_in_tmp,
    acme_callrail,
    run_tasks,
    worker,
)
