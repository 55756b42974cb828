"""The reconcile-callrail schedule: calls whose webhook never came are found through the
API; known ones are left alone; one tenant's failure stays its own."""

from __future__ import annotations

from calls import services, sweeps
from calls.models import Call
from tests.calls.conftest import GLOBEX_COM, INGEST, TRANSCRIBE, make_calls

Stage = Call.Stage
RECONCILE = "calls.tasks.reconcile_company_calls"
# Spread over the last few hours, all older than the settle time and inside the window.
EARLIER_TODAY = 0.2  # days: 4.8 hours, ending an hour ago


def test_a_call_whose_webhook_never_came_is_ingested(acme_callrail, sandbox, run_tasks):
    # given two calls in CallRail, one of them already known from its webhook
    known, lost = make_calls(sandbox, 2, days=EARLIER_TODAY, scenario="booked")
    services.upsert_call(acme_callrail, call_id=known["id"])

    # when the schedule runs
    with run_tasks() as worker:
        sweeps.reconcile_callrail()

    # then only the lost one is ingested
    assert worker.failed == []
    assert worker.paths() == {RECONCILE: 1, INGEST: 1, TRANSCRIBE: 1}
    recovered = Call.objects.get(external_id=lost["id"])
    assert recovered.stage == Stage.RECORDED and recovered.company == acme_callrail
    assert Call.objects.get(external_id=known["id"]).stage == Stage.RECEIVED
    assert Call.objects.count() == 2


def test_a_second_pass_finds_nothing_new(acme_callrail, sandbox, run_tasks):
    make_calls(sandbox, 3, days=EARLIER_TODAY)
    with run_tasks():
        assert sweeps.reconcile_company(acme_callrail) == {"new": 3, "known": 0}

    with run_tasks() as worker:
        assert sweeps.reconcile_company(acme_callrail) == {"new": 0, "known": 3}

    assert worker.pushed == [] and Call.objects.count() == 3


def test_calls_younger_than_the_settle_time_are_left_to_their_webhook(acme_callrail, sandbox):
    make_calls(sandbox, 2)  # the last few minutes: recordings may not be attached yet

    assert sweeps.reconcile_company(acme_callrail) == {"new": 0, "known": 0}
    assert not Call.objects.exists()


def test_one_tenants_failing_api_does_not_stop_another(
    acme_callrail, globex_callrail, sandbox, run_tasks
):
    make_calls(sandbox, 1, days=EARLIER_TODAY)
    theirs = make_calls(sandbox, 1, days=EARLIER_TODAY, company_id=GLOBEX_COM)[0]
    # Acme's listing (the first) fails
    sandbox.inject("callrail.calls.list", "500", count=1)

    with run_tasks() as worker:
        sweeps.reconcile_callrail()

    assert [(path, type(exc).__name__) for path, exc in worker.failed] == [
        (RECONCILE, "ProviderError")
    ]
    call = Call.objects.get()
    assert (call.company, call.external_id) == (globex_callrail, theirs["id"])
    assert call.stage == Stage.RECORDED
    # Acme's call is found by the next pass, 15 minutes later
    with run_tasks():
        sweeps.reconcile_callrail()
    assert Call.objects.filter(company=acme_callrail).count() == 1


def test_tenants_without_callrail_or_inactive_are_not_reconciled(
    acme_callrail, globex, sandbox, run_tasks
):
    acme_callrail.is_active = False
    acme_callrail.save()

    with run_tasks() as worker:
        assert sweeps.reconcile_callrail() == []

    assert worker.pushed == [] and sandbox.recorded("callrail") == []
