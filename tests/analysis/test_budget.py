"""The monthly LLM budget: once a company's analyses this month (its time zone) cost its
budget, new calls wait visibly at ``transcribed``, and go on when the month rolls or the
budget is raised."""

from __future__ import annotations

import datetime
import logging
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from analysis import pricing, selectors, services
from analysis.models import CallAnalysis
from calls.models import Call, CallStageChange
from integrations.sandbox.analysis_rules import SIMULATED_MODEL
from otto import env
from tests.analysis.conftest import NEW_YORK, transcribed_call
from tests.pipeline.conftest import make_due

Stage = Call.Stage


def spend(company, amount: str, at: datetime.datetime) -> CallAnalysis:
    """An analysis of ``company`` made at ``at`` that cost ``amount``."""
    call = transcribed_call(company, "booked")
    assert services.analyze_call(call.pk) == Stage.ANALYZED
    analysis = CallAnalysis.objects.get(call=call)
    CallAnalysis.objects.filter(pk=analysis.pk).update(cost_usd=Decimal(amount), created_at=at)
    return analysis


def parks(call) -> int:
    changes = CallStageChange.objects.filter(call=call, to_stage=Stage.TRANSCRIBED)
    return changes.filter(reason__contains="budget").count()


# 31 March, 22:00 in New York is already 1 April in UTC: the month is the tenant's.
MARCH_31_2200 = datetime.datetime(2026, 3, 31, 22, 0, tzinfo=NEW_YORK)
APRIL_1_0030 = datetime.datetime(2026, 4, 1, 0, 30, tzinfo=NEW_YORK)


def test_a_spent_budget_parks_new_calls_visibly_until_the_month_rolls(
    acme, sandbox, settings, caplog
):
    settings.ANALYSIS_MONTHLY_BUDGET_USD = Decimal("2.00")
    spend(acme, "1.50", datetime.datetime(2026, 3, 2, 9, 0, tzinfo=NEW_YORK))
    spend(acme, "0.50", MARCH_31_2200 - datetime.timedelta(hours=1))
    spend(acme, "9.00", datetime.datetime(2026, 2, 27, 9, 0, tzinfo=NEW_YORK))  # February
    call = transcribed_call(acme, "card_number")
    caplog.clear()

    with time_machine.travel(MARCH_31_2200, tick=False), caplog.at_level(logging.INFO):
        assert services.analyze_call(call.pk) == Stage.TRANSCRIBED
        assert services.analyze_call(call.pk) == Stage.TRANSCRIBED  # the hourly recheck

    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBED and call.attempts == 0 and call.last_error == ""
    assert "monthly analysis budget of $2.00 is spent ($2.00 this month)" in call.stage_reason
    assert call.next_attempt_at == MARCH_31_2200 + services.PARK_RECHECK
    assert not CallAnalysis.objects.filter(call=call).exists()
    assert parks(call) == 1  # parked once in the history, not once per recheck
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    # the month rolls in New York (still 1 April in UTC either side): analysed
    with time_machine.travel(APRIL_1_0030, tick=False):
        assert services.analyze_call(call.pk) == Stage.ANALYZED


def test_raising_the_companys_budget_lets_its_calls_go_on(acme, globex, sandbox, settings):
    settings.ANALYSIS_MONTHLY_BUDGET_USD = Decimal("100")
    acme.analysis_monthly_budget_usd = Decimal("1.00")
    acme.save()
    now = datetime.datetime.now(tz=NEW_YORK)
    spend(acme, "1.00", now)
    spend(globex, "50.00", now)  # under the deployment's budget
    waiting, globex_call = transcribed_call(acme), transcribed_call(globex)

    assert services.analyze_call(waiting.pk) == Stage.TRANSCRIBED
    assert services.analyze_call(globex_call.pk) == Stage.ANALYZED

    acme.analysis_monthly_budget_usd = Decimal("5.00")
    acme.save()
    make_due(waiting)  # the recheck comes within the hour
    assert services.analyze_call(waiting.pk) == Stage.ANALYZED


def test_without_a_budget_nothing_waits(acme, sandbox, settings):
    settings.ANALYSIS_MONTHLY_BUDGET_USD = None
    spend(acme, "9000", datetime.datetime.now(tz=NEW_YORK))

    assert services.analyze_call(transcribed_call(acme).pk) == Stage.ANALYZED


def test_the_month_is_the_companys_own(acme):
    acme.timezone = "America/Los_Angeles"
    # 1 April 03:00 UTC is still 31 March, 20:00 in Los Angeles
    start, end = selectors.month_bounds(acme, datetime.datetime(2026, 4, 1, 3, tzinfo=datetime.UTC))

    assert (start.isoformat(), end.isoformat()) == (
        "2026-03-01T00:00:00-08:00",
        "2026-04-01T00:00:00-07:00",
    )


def test_reanalyze_stops_when_the_budget_runs_out_and_resumes(acme, sandbox, settings, monkeypatch):
    calls = [transcribed_call(acme) for _ in range(3)]
    for call in calls:
        services.analyze_call(call.pk)  # at cost 0: the sandbox's model has no price
    # now every request costs something: one analysis spends the budget
    monkeypatch.setitem(pricing.PRICES, SIMULATED_MODEL, (Decimal(1000), Decimal(1000)))
    settings.ANALYSIS_MONTHLY_BUDGET_USD = Decimal("0.01")
    args = ("reanalyze", "--company", "acme", "--since", "2026-03-06", "--until", "2026-03-06")

    with pytest.raises(CommandError, match="monthly analysis budget .* is spent"):
        call_command(*args)
    counts = [CallAnalysis.objects.filter(call=c).count() for c in calls]
    assert counts == [2, 1, 1]
    # the calls not reached are untouched: still analysed, not parked
    assert [c.stage for c in Call.objects.filter(pk__in=[calls[1].pk, calls[2].pk])] == [
        Stage.ANALYZED
    ] * 2

    settings.ANALYSIS_MONTHLY_BUDGET_USD = Decimal("1000")
    call_command(*args)
    assert [CallAnalysis.objects.filter(call=c).count() for c in calls] == [2, 2, 2]


@pytest.mark.parametrize("value", ["lots", "-5", "NaN"])
def test_a_bad_budget_fails_at_start_up(monkeypatch, value):
    monkeypatch.setenv("ANALYSIS_MONTHLY_BUDGET_USD", value)

    with pytest.raises(ImproperlyConfigured, match="ANALYSIS_MONTHLY_BUDGET_USD"):
        env.env_decimal("ANALYSIS_MONTHLY_BUDGET_USD")


def test_a_budget_reads_as_a_decimal(monkeypatch):
    monkeypatch.setenv("ANALYSIS_MONTHLY_BUDGET_USD", " 250.50 ")
    assert env.env_decimal("ANALYSIS_MONTHLY_BUDGET_USD") == Decimal("250.50")
    monkeypatch.setenv("ANALYSIS_MONTHLY_BUDGET_USD", "")
    assert env.env_decimal("ANALYSIS_MONTHLY_BUDGET_USD") is None
