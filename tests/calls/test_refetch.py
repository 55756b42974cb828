"""Ops' "re-fetch recording" never loses audio: the stored recording stays, file and fields,
until its successor is downloaded and stored; a failed re-fetch leaves it playable."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from calls import services, stages, sweeps
from calls.models import Call
from calls.services import recording
from otto import selectors as core_selectors
from tests.calls.conftest import INGEST, TRANSCRIBE
from tests.calls.test_ingest import new_call, time_passes

Stage = Call.Stage


@pytest.fixture
def ingested(acme_callrail, sandbox, run_tasks) -> Call:
    """A call ingest is done with: its recording is in storage."""
    call = new_call(acme_callrail, sandbox, scenario="booked")
    with run_tasks():
        services.ingest_call(call.pk)
    call.refresh_from_db()
    assert call.stage == Stage.RECORDED and default_storage.exists(call.recording.name)
    return call


def recording_of(call: Call) -> tuple:
    call.refresh_from_db()
    return (
        call.recording.name,
        call.recording_size,
        call.recording_sha256,
        call.recording_content_type,
    )


def playable(call: Call) -> bytes:
    """The bytes a player gets for the call's recording (what its link serves)."""
    with default_storage.open(call.recording.name, "rb") as audio:
        return audio.read()


def test_the_recording_stays_while_the_refetch_waits(ingested, worker):
    before, audio = recording_of(ingested), playable(ingested)

    services.request_ingest(ingested, refetch_recording=True)

    assert Call.objects.get(pk=ingested.pk).stage == Stage.RECEIVED
    assert recording_of(ingested) == before and playable(ingested) == audio


@pytest.mark.parametrize(
    ("mode", "count"),
    [("500", 1), ("timeout", 1)],
)
def test_a_transient_refetch_failure_keeps_the_recording_playable(
    ingested, sandbox, run_tasks, mode, count
):
    before, audio = recording_of(ingested), playable(ingested)
    sandbox.inject("callrail.media.file", mode, count=count, delay_seconds=3)

    # when the re-fetch's download fails
    with run_tasks():
        services.request_ingest(ingested, refetch_recording=True)

    # then the call waits for a retry, with its recording as it was
    ingested.refresh_from_db()
    assert (ingested.stage, ingested.attempts) == (Stage.RECEIVED, 1)
    assert ingested.last_error
    assert recording_of(ingested) == before and playable(ingested) == audio

    # and the retry, once due, gets the audio and hands the call on again
    with run_tasks() as worker:
        time_passes(ingested)
        assert sweeps.retry_due_calls()["enqueued"] == 1
    assert Call.objects.get(pk=ingested.pk).stage == Stage.RECORDED
    assert worker.paths() == {INGEST: 1, TRANSCRIBE: 1}
    assert recording_of(ingested)[2] == before[2]


def test_a_refetch_that_fails_for_good_keeps_the_recording_playable(
    ingested, sandbox, run_tasks, settings
):
    settings.PIPELINE_MAX_ATTEMPTS = 1
    before, audio = recording_of(ingested), playable(ingested)
    sandbox.inject("callrail.media.file", "500", count=5)

    with run_tasks() as worker:
        services.request_ingest(ingested, refetch_recording=True)

    ingested.refresh_from_db()
    assert ingested.stage == Stage.FAILED and "HTTP 500" in ingested.last_error
    assert recording_of(ingested) == before and playable(ingested) == audio
    assert worker.count(TRANSCRIBE) == 0


def test_a_refetch_callrail_answers_404_keeps_the_recording_playable(ingested, sandbox, run_tasks):
    before, audio = recording_of(ingested), playable(ingested)
    sandbox.state["callrail"]["calls"][ingested.external_id]["_redirect_url"] = None

    with run_tasks() as worker:
        services.request_ingest(ingested, refetch_recording=True)

    ingested.refresh_from_db()
    assert ingested.stage == Stage.SKIPPED and "HTTP 404" in ingested.stage_reason
    assert recording_of(ingested) == before and playable(ingested) == audio
    assert worker.count(TRANSCRIBE) == 0


def test_a_refetch_over_the_size_limit_keeps_the_recording_playable(ingested, run_tasks, settings):
    before, audio = recording_of(ingested), playable(ingested)
    settings.RECORDING_MAX_BYTES = 1000

    with run_tasks():
        services.request_ingest(ingested, refetch_recording=True)

    ingested.refresh_from_db()
    assert ingested.stage == Stage.FAILED and "RECORDING_MAX_BYTES" in ingested.last_error
    assert recording_of(ingested) == before and playable(ingested) == audio


def test_new_audio_replaces_the_old_only_once_stored(ingested, sandbox, run_tasks):
    # given CallRail now serves other audio for the call
    old_name, old_audio = ingested.recording.name, playable(ingested)
    remote = sandbox.state["callrail"]["calls"][ingested.external_id]
    remote["_redirect_url"] = remote["_redirect_url"].replace("/booked/", "/card_number/")

    with run_tasks() as worker:
        services.request_ingest(ingested, refetch_recording=True)

    # then the call points at the new audio, and the old file is gone after the commit
    ingested.refresh_from_db()
    assert ingested.stage == Stage.RECORDED
    assert ingested.recording.name != old_name
    assert playable(ingested) != old_audio
    assert ingested.recording_size == len(playable(ingested))
    assert not default_storage.exists(old_name)
    assert worker.paths() == {INGEST: 1, TRANSCRIBE: 1}


def test_a_worker_that_lost_its_claim_leaves_the_recording_and_no_new_file(
    ingested, sandbox, acme_callrail
):
    # given a re-fetch's worker downloaded other audio, but ops re-ran the call meanwhile
    old_name, old_audio = ingested.recording.name, playable(ingested)
    remote = sandbox.state["callrail"]["calls"][ingested.external_id]
    remote["_redirect_url"] = remote["_redirect_url"].replace("/booked/", "/card_number/")
    services.request_ingest(ingested, refetch_recording=True)
    ingested.refresh_from_db()
    stale = stages.claim(ingested, Stage.INGESTING)
    client = core_selectors.callrail_client(acme_callrail)
    stored = recording.store_recording(ingested, client)
    assert stored is not None and stored.name != old_name
    services.request_ingest(ingested)

    # when the stale worker finishes
    with pytest.raises(stages.LeaseLost):
        services.ingest.finish_recorded(stale, stored, previous=old_name)

    # then the call still plays the old audio and the new file was removed
    ingested.refresh_from_db()
    assert ingested.recording.name == old_name and playable(ingested) == old_audio
    assert not default_storage.exists(stored.name)
