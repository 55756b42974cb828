"""ingest_call against the sandbox's CallRail: retries, terminal stages, the lease, and
the admin's re-run/re-fetch entry point."""

from __future__ import annotations

import datetime

import pytest
from django.core.files.storage import FileSystemStorage, default_storage
from django.utils import timezone

from calls import services, stages, sweeps
from calls.models import Call
from otto import selectors as core_selectors
from tests.calls.conftest import INGEST, TRANSCRIBE, make_calls

Stage = Call.Stage
SECOND = datetime.timedelta(seconds=1)


def new_call(company, sandbox, **spec) -> Call:
    """A call CallRail has, known to Otto as a received row (as a webhook leaves it)."""
    made = make_calls(sandbox, **spec)[0]
    call, created = services.upsert_call(company, call_id=made["id"])
    assert created
    return call


def time_passes(call: Call) -> None:
    """The call's backoff (or lease) runs out, as if its ``next_attempt_at`` had passed."""
    Call.objects.filter(pk=call.pk).update(next_attempt_at=timezone.now() - SECOND)


def retry_when_due(call: Call) -> dict:
    """Run the retry sweep once the call's backoff (or lease) is over."""
    time_passes(call)
    return sweeps.retry_due_calls()


@pytest.fixture
def few_attempts(settings):
    settings.PIPELINE_MAX_ATTEMPTS = 3


# --- transient and permanent API failures ----------------------------------------------


@pytest.mark.parametrize(
    ("mode", "count", "in_error"),
    [
        # The client itself retries a 429 twice (Retry-After: 1 s) before giving up.
        ("429", 3, "HTTP 429"),
        ("500", 1, "HTTP 500"),
        ("timeout", 1, "timed out"),
    ],
)
def test_a_transient_api_failure_is_retried_later_and_not_lost(
    acme_callrail, sandbox, run_tasks, mode, count, in_error
):
    call = new_call(acme_callrail, sandbox, scenario="booked")
    sandbox.inject("callrail.calls.get", mode, count=count, delay_seconds=3)

    # when the first attempt meets the failure
    before = timezone.now()
    with run_tasks() as worker:
        assert services.ingest_call(call.pk) == Stage.RECEIVED

    # then the call waits for a later attempt, with the error and a backoff
    call.refresh_from_db()
    assert (call.stage, call.attempts) == (Stage.RECEIVED, 1)
    assert in_error in call.last_error
    assert call.next_attempt_at > before + datetime.timedelta(seconds=29)
    assert worker.pushed == []
    # not due before its backoff is over
    with run_tasks() as worker:
        assert sweeps.retry_due_calls()["enqueued"] == 0

    # and when it is due, the retry sweep ingests it
    with run_tasks() as worker:
        assert retry_when_due(call)["enqueued"] == 1
    call.refresh_from_db()
    assert (call.stage, call.attempts, call.last_error) == (Stage.RECORDED, 2, "")
    assert worker.paths() == {INGEST: 1, TRANSCRIBE: 1}


def test_it_fails_only_after_the_maximum_attempts(acme_callrail, sandbox, run_tasks, few_attempts):
    call = new_call(acme_callrail, sandbox)
    sandbox.inject("callrail.calls.get", "500", count=10)

    services.ingest_call(call.pk)
    for _ in range(2):
        call.refresh_from_db()
        assert call.stage == Stage.RECEIVED
        with run_tasks():
            retry_when_due(call)

    call.refresh_from_db()
    assert (call.stage, call.attempts) == (Stage.FAILED, 3)
    assert call.last_error.startswith("gave up after 3 attempts") and "HTTP 500" in call.last_error
    assert call.next_attempt_at is None
    assert len(sandbox.recorded("callrail.calls.get")) == 3


def test_a_permanent_api_error_fails_at_once(acme_callrail, sandbox, run_tasks):
    call, _ = services.upsert_call(acme_callrail, call_id="CAL0000000000000000000000000000404")

    with run_tasks() as worker:
        assert services.ingest_call(call.pk) == Stage.FAILED

    call.refresh_from_db()
    assert (call.stage, call.attempts) == (Stage.FAILED, 1)
    assert "HTTP 404" in call.last_error and call.stage_reason
    assert worker.pushed == []


# --- calls without a recording, and recordings we refuse ----------------------------------


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"missed": True}, "missed call"),
        ({"recording": "404"}, "no recording for this call any more (HTTP 404)"),
    ],
    ids=["missed", "recording-404"],
)
def test_a_call_without_audio_is_stored_and_skipped(
    acme_callrail, sandbox, run_tasks, spec, reason
):
    call = new_call(acme_callrail, sandbox, scenario="booked", **spec)

    with run_tasks() as worker:
        assert services.ingest_call(call.pk) == Stage.SKIPPED

    call.refresh_from_db()
    assert call.stage == Stage.SKIPPED and reason in call.stage_reason
    assert call.customer_number and call.contact is not None and call.started_at
    assert not call.recording and call.recording_size is None
    assert worker.count(TRANSCRIBE) == 0
    # a missed call is handed to missed-call recovery (messaging), nothing else
    assert call.recoveries.exists() == ("missed" in reason)


def test_a_recording_over_the_limit_fails_and_leaves_no_file(
    acme_callrail, sandbox, run_tasks, settings
):
    settings.RECORDING_MAX_BYTES = 1000
    call = new_call(acme_callrail, sandbox, scenario="booked")

    with run_tasks() as worker:
        assert services.ingest_call(call.pk) == Stage.FAILED

    call.refresh_from_db()
    assert call.stage == Stage.FAILED
    assert "larger than RECORDING_MAX_BYTES" in call.last_error
    assert "RECORDING_MAX_BYTES" in call.stage_reason
    assert not default_storage.exists(call.recording_path) and not call.recording
    assert worker.pushed == []


# --- the lease ------------------------------------------------------------------------------


def test_a_worker_killed_mid_ingest_is_picked_up_after_its_lease(acme_callrail, sandbox, run_tasks):
    # given a worker claimed the call and died (its task is gone, the claim stays)
    call = new_call(acme_callrail, sandbox, scenario="booked")
    claim = stages.claim(call, Stage.INGESTING)
    assert Call.objects.get(pk=call.pk).stage == Stage.INGESTING

    # then nobody else takes it while the lease holds
    with run_tasks() as worker:
        assert services.ingest_call(call.pk) is None
        assert sweeps.retry_due_calls()["enqueued"] == 0
    assert worker.pushed == []

    # and once it expires, the reaper puts it back to received and ingest runs again
    assert sweeps.retry_due_calls(now=claim.lease - SECOND)["reclaimed"] == 0
    with run_tasks() as worker:
        assert retry_when_due(call) == {"failed": 0, "enqueued": 1, "reclaimed": 1}
    call.refresh_from_db()
    assert (call.stage, call.attempts) == (Stage.RECORDED, 2)
    assert worker.count(TRANSCRIBE) == 1
    moves = call.stage_changes.order_by("created_at", "pk")
    assert [(m.from_stage, m.to_stage) for m in moves] == [
        (Stage.RECEIVED, Stage.INGESTING),
        (Stage.INGESTING, Stage.RECEIVED),
        (Stage.RECEIVED, Stage.INGESTING),
        (Stage.INGESTING, Stage.RECORDED),
    ]
    assert "deadline" in moves[1].reason


def test_the_old_worker_cannot_write_after_its_lease_was_taken_over(acme_callrail, sandbox):
    call = new_call(acme_callrail, sandbox, scenario="booked")
    stale = stages.claim(call, Stage.INGESTING)
    services.request_ingest(call)  # ops re-run it: the old lease is void

    found = core_selectors.callrail_client(acme_callrail).get_call(call.external_id)
    with pytest.raises(stages.LeaseLost):
        services.apply_callrail_call(call, found, claim=stale)

    call.refresh_from_db()
    assert (call.stage, call.customer_number) == (Stage.RECEIVED, "")


def test_a_worker_killed_on_the_last_attempt_ends_failed(acme_callrail, sandbox, few_attempts):
    call = new_call(acme_callrail, sandbox)
    Call.objects.filter(pk=call.pk).update(attempts=2)
    call.refresh_from_db()
    claim = stages.claim(call, Stage.INGESTING)

    result = sweeps.retry_due_calls(now=claim.lease + SECOND)

    call.refresh_from_db()
    assert result == {"failed": 1, "enqueued": 0, "reclaimed": 1}
    assert call.stage == Stage.FAILED and "worker stopped" in call.last_error


def test_a_call_whose_first_task_was_lost_is_enqueued_after_a_grace(acme_callrail, sandbox):
    call = new_call(acme_callrail, sandbox)

    assert sweeps.retry_due_calls()["enqueued"] == 0
    later = timezone.now() + sweeps.RECEIVED_GRACE + SECOND
    assert sweeps.retry_due_calls(now=later)["enqueued"] == 1
    call.refresh_from_db()
    assert call.stage == Stage.RECEIVED


def test_an_unexpected_error_is_recorded_then_raised(acme_callrail, sandbox, monkeypatch):
    call = new_call(acme_callrail, sandbox, scenario="booked")

    def storage_down(*args, **kwargs):
        raise OSError("storage is down")

    # On the class: the default_storage proxy is re-armed whenever a test changes STORAGES.
    monkeypatch.setattr(FileSystemStorage, "save", storage_down)

    with pytest.raises(OSError, match="storage is down"):
        services.ingest_call(call.pk)

    call.refresh_from_db()
    assert call.stage == Stage.RECEIVED and "OSError: storage is down" in call.last_error
    assert call.next_attempt_at > timezone.now()


def test_backoff_grows_with_jitter_and_honours_retry_after():
    first = [stages.backoff(1).total_seconds() for _ in range(20)]
    fourth = [stages.backoff(4).total_seconds() for _ in range(20)]

    assert all(30 <= s <= 60 for s in first) and len(set(first)) > 1
    assert all(240 <= s <= 480 for s in fourth)
    assert stages.backoff(20).total_seconds() <= stages.RETRY_MAX_SECONDS
    assert stages.backoff(1, retry_after=600).total_seconds() == 600


# --- idempotency and the admin's entry point ------------------------------------------------


def test_ingesting_twice_changes_nothing(acme_callrail, sandbox, run_tasks):
    call = new_call(acme_callrail, sandbox, scenario="booked")
    with run_tasks():
        services.ingest_call(call.pk)
    before = Call.objects.values().get(pk=call.pk)

    with run_tasks() as worker:
        assert services.ingest_call(call.pk) is None

    assert Call.objects.values().get(pk=call.pk) == before
    assert worker.pushed == []
    assert len(sandbox.recorded("callrail.media.file")) == 1


def test_rerun_ingest_of_a_failed_call_starts_over(acme_callrail, sandbox, run_tasks, few_attempts):
    call = new_call(acme_callrail, sandbox, scenario="booked")
    Call.objects.filter(pk=call.pk).update(
        stage=Stage.FAILED, attempts=3, last_error="gave up", stage_reason="gave up"
    )
    call.refresh_from_db()

    with run_tasks() as worker:
        services.request_ingest(call)

    call.refresh_from_db()
    assert (call.stage, call.attempts, call.last_error) == (Stage.RECORDED, 1, "")
    assert worker.paths() == {INGEST: 1, TRANSCRIBE: 1}


def test_rerun_ingest_of_a_recorded_call_only_refreshes_its_details(
    acme_callrail, sandbox, run_tasks
):
    call = new_call(acme_callrail, sandbox, scenario="booked")
    with run_tasks():
        services.ingest_call(call.pk)
    sandbox.state["callrail"]["calls"][call.external_id]["note"] = "Called back"
    call.refresh_from_db()

    with run_tasks() as worker:
        services.request_ingest(call)

    call.refresh_from_db()
    assert (call.stage, call.note) == (Stage.RECORDED, "Called back")
    # no new download or transcription: the details are refreshed and re-indexed
    assert worker.paths() == {"calls.tasks.refresh_call": 1, "calls.tasks.index_call": 1}
    assert len(sandbox.recorded("callrail.media.file")) == 1


def test_refetch_recording_downloads_it_again_and_hands_it_on(acme_callrail, sandbox, run_tasks):
    call = new_call(acme_callrail, sandbox, scenario="booked")
    with run_tasks():
        services.ingest_call(call.pk)
    call.refresh_from_db()
    first = (call.recording.name, call.recording_sha256)

    with run_tasks() as worker:
        services.request_ingest(call, refetch_recording=True)

    call.refresh_from_db()
    assert call.stage == Stage.RECORDED
    assert (call.recording.name, call.recording_sha256) == first  # same path, same audio
    assert len(sandbox.recorded("callrail.media.file")) == 2
    assert worker.paths() == {INGEST: 1, TRANSCRIBE: 1}


def test_request_ingest_never_touches_another_tenants_call(
    acme_callrail, globex_callrail, sandbox, run_tasks
):
    call = new_call(acme_callrail, sandbox)
    Call.objects.filter(pk=call.pk).update(stage=Stage.FAILED)
    call.refresh_from_db()
    call.company_id = globex_callrail.pk  # a caller confused about the tenant

    with run_tasks() as worker:
        services.request_ingest(call)

    assert Call.objects.get(pk=call.pk).stage == Stage.FAILED
    assert worker.pushed == []
