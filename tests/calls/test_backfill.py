"""manage.py backfill_calls against a sandbox account with a history of calls."""

from __future__ import annotations

import datetime
import io
import re
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from calls import backfill
from calls.models import Call, CallBackfill
from tests.calls.conftest import TRANSCRIBE, make_calls

Stage = Call.Stage


def days_ago(company, days: int) -> str:
    return str(datetime.datetime.now(ZoneInfo(company.timezone)).date() - datetime.timedelta(days))


def run_backfill(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("backfill_calls", *args, stdout=out, stderr=err)
    finally:
        run_backfill.stderr = err.getvalue()
    return out.getvalue()


def summary(out: str) -> dict[str, int]:
    line = re.search(r"(\d+) calls: (\d+) (?:would be )?new, (\d+) existing, (\d+) failed", out)
    assert line, out
    total, new, existing, failed = map(int, line.groups())
    return {"total": total, "new": new, "existing": existing, "failed": failed}


@pytest.fixture
def history(acme_callrail, sandbox, monkeypatch):
    """500 calls over the last ten days, listed 200 to a page: 3 pages."""
    monkeypatch.setattr(backfill, "PAGE_SIZE", 200)
    made = []
    for count in (200, 200, 100):
        made += make_calls(sandbox, count, days=10)
    return made


def test_an_interrupted_backfill_resumes_and_stores_every_call_once(
    acme_callrail, sandbox, history, monkeypatch
):
    args = ("--company", "acme", "--since", days_ago(acme_callrail, 11), "--no-recordings")

    # given a run interrupted (Ctrl-C) halfway through
    handle_one = backfill._backfill_one
    handled = []

    def interrupted(*a, **kw):
        if len(handled) == 250:
            raise KeyboardInterrupt
        handled.append(1)
        return handle_one(*a, **kw)

    monkeypatch.setattr(backfill, "_backfill_one", interrupted)
    with pytest.raises(CommandError, match="interrupted.*Run the same command again"):
        run_backfill(*args)
    assert Call.objects.count() == 250
    assert CallBackfill.objects.get().cursor is not None
    monkeypatch.setattr(backfill, "_backfill_one", handle_one)

    # when it is run again
    out = run_backfill(*args)

    # then it resumes where it stopped, and every call is stored exactly once
    resumed = summary(out)
    assert resumed["new"] == 250 and resumed["total"] < 260
    assert Call.objects.count() == 500
    assert set(Call.objects.values_list("external_id", flat=True)) == {c["id"] for c in history}
    assert set(Call.objects.values_list("stage", "stage_reason")) == {
        (Stage.SKIPPED, backfill.NO_RECORDINGS_REASON)
    }
    assert not Call.objects.filter(started_at=None).exists()
    assert CallBackfill.objects.get().finished_at is not None
    # 3 pages for the first run's 250 calls and the rest, each at most 200 calls
    requests = sandbox.recorded("callrail.calls.list")
    assert {r["query"]["per_page"][0] for r in requests} == {"200"}
    assert requests[0]["query"]["order"] == ["asc"]
    assert "500 calls" not in out and "250 new" in out


def test_a_dry_run_counts_and_writes_nothing(acme_callrail, history):
    out = run_backfill(
        "--company", str(acme_callrail.pk), "--since", days_ago(acme_callrail, 11), "--dry-run"
    )

    assert summary(out) == {"total": 500, "new": 500, "existing": 0, "failed": 0}
    assert "would be new" in out
    assert not Call.objects.exists() and not CallBackfill.objects.exists()


def test_a_backfill_with_recordings_ingests_each_call_and_skips_known_ones(
    acme_callrail, sandbox, run_tasks
):
    made = make_calls(sandbox, 4, days=3, scenario="booked")
    missed = make_calls(sandbox, 1, days=3, missed=True)[0]
    known = backfill.upsert_call(acme_callrail, call_id=made[0]["id"])[0]

    with run_tasks() as worker:
        out = run_backfill("--company", "acme", "--since", days_ago(acme_callrail, 4))

    assert summary(out) == {"total": 5, "new": 4, "existing": 1, "failed": 0}
    assert Call.objects.get(pk=known.pk).stage == Stage.RECEIVED  # left to the pipeline
    recorded = Call.objects.filter(stage=Stage.RECORDED)
    assert recorded.count() == 3 and all(call.recording_sha256 for call in recorded)
    assert Call.objects.get(external_id=missed["id"]).stage == Stage.SKIPPED
    assert worker.count(TRANSCRIBE) == 3
    # the listed data was used: no per-call GET
    assert sandbox.recorded("callrail.calls.get") == []
    assert "5 calls" in run_backfill.stderr


def test_a_callrail_failure_stops_the_run_with_a_way_to_resume(acme_callrail, sandbox):
    make_calls(sandbox, 3, days=2)
    sandbox.inject("callrail.calls.list", "500")

    with pytest.raises(CommandError, match="HTTP 500.*Run the same command again"):
        run_backfill("--company", "acme", "--since", days_ago(acme_callrail, 3))

    out = run_backfill("--company", "acme", "--since", days_ago(acme_callrail, 3))
    assert summary(out)["new"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--company", "nobody", "--since", "2026-01-01"), "No company with slug 'nobody'"),
        (("--company", "acme", "--since", "last week"), "is not a date"),
        (("--company", "acme", "--since", "2026-02-01", "--until", "2026-01-01"), "before"),
    ],
)
def test_bad_arguments_are_refused(acme_callrail, args, message):
    with pytest.raises(CommandError, match=message):
        run_backfill(*args)
