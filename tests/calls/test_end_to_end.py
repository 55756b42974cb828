"""The whole ingest path with nothing stubbed: the sandbox's CallRail delivers signed
webhooks to a live server, a real qcluster ingests them from Redis."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.files.storage import FileSystemStorage

from calls.models import Call
from integrations.models import WebhookEvent
from tests.calls.conftest import ACME_KEY, make_calls
from tests.conftest import wait_for


@pytest.mark.cluster
def test_sandbox_calls_are_ingested_by_a_real_cluster(
    acme_callrail, sandbox, live_server, start_qcluster
):
    # given a worker reading the same database, Redis and sandbox
    start_qcluster(SANDBOX_URL=sandbox.url)

    # when CallRail reports three calls
    made = make_calls(
        sandbox,
        3,
        scenario="booked",
        signing_key=ACME_KEY,
        webhook_url=f"{live_server.url}/callrail/call.completed",
    )

    # then each is acknowledged at once, ingested by the cluster with its recording, and
    # transcribed, analysed and its outcomes applied (tests/pipeline, tests/analysis and
    # tests/appointments cover those stages)
    assert [call["status"] for call in made] == [200] * 3
    recorded = Call.objects.filter(stage=Call.Stage.DONE)
    wait_for(lambda: recorded.count() == 3, timeout=60)
    assert set(recorded.values_list("external_id", flat=True)) == {c["id"] for c in made}
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}
    # the cluster's storage is the project's media root (it has no test settings)
    storage = FileSystemStorage(location=settings.BASE_DIR / "media")
    for call in recorded:
        assert call.recording_size == storage.size(call.recording.name)
        storage.delete(call.recording.name)
