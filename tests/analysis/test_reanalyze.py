"""``manage.py reanalyze``: past calls analysed again in a date range, every version kept,
corrections carried over, and an interrupted pass resumed without analysing a call twice."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import CommandError, call_command

from analysis import services
from analysis.management.commands import reanalyze
from analysis.models import CallAnalysis, Reanalysis
from calls import pipeline
from calls.models import Call, CallStageChange
from tests.analysis.conftest import FRIDAY_1640, NEW_YORK, transcribed_call

Stage = Call.Stage
API = "/api/v1/calls"


def analysed_call(company, scenario: str = "booked", *, started_at=FRIDAY_1640) -> Call:
    call = transcribed_call(company, scenario, started_at=started_at)
    assert services.analyze_call(call.pk) == Stage.ANALYZED
    call.refresh_from_db()
    return call


def versions(call) -> list[tuple[int, bool]]:
    rows = CallAnalysis.objects.filter(call=call).order_by("version")
    return list(rows.values_list("version", "is_current"))


def run(*args: str) -> None:
    call_command("reanalyze", "--company", "acme", *args)


def at(day: int, hour: int, minute: int = 0) -> datetime.datetime:
    return datetime.datetime(2026, 3, day, hour, minute, tzinfo=NEW_YORK)


def test_only_the_companys_calls_in_the_range_are_reanalysed(acme, globex, sandbox, capsys):
    # given: 6-7 March in New York; 23:30 on the 7th is already the 8th in UTC
    inside = [
        analysed_call(acme, started_at=at(6, 0, 5)),
        analysed_call(acme, "card_number", started_at=at(7, 23, 30)),
    ]
    before = analysed_call(acme, started_at=at(5, 23, 50))
    after = analysed_call(acme, started_at=at(8, 0, 10))
    outsider = analysed_call(globex, started_at=at(6, 12))

    run("--since", "2026-03-06", "--until", "2026-03-07")

    for call in inside:
        assert versions(call)[-2:] == [(1, False), (2, True)]
        call.refresh_from_db()
        # (analysed again, and handed on to the outcomes stage, whose attempts start at 0)
        assert call.stage == Stage.ANALYZED
    for call in (before, after, outsider):
        assert versions(call) == [(1, True)]
    assert "2 call(s): 2 analysed" in capsys.readouterr().out
    # the move back into analysis is in each call's history, with why
    moves = CallStageChange.objects.filter(call=inside[0], to_stage=Stage.TRANSCRIBED)
    assert "manage.py reanalyze 2026-03-06…2026-03-07" in moves.last().reason


def test_every_version_is_listed_and_corrections_survive(acme, sandbox, acme_manager):
    call = analysed_call(acme)
    client = acme_manager.client()
    client.patch(f"{API}/{call.pk}/analysis/", {"lead_quality": "cold"}, format="json")

    run("--since", "2026-03-06", "--until", "2026-03-06")

    listed = client.get(f"{API}/{call.pk}/analyses/").json()
    assert [(v["version"], v["is_current"]) for v in listed] == [(2, True), (1, False)]
    assert listed[0]["overrides"] == {"lead_quality": "cold"}
    detail = client.get(f"{API}/{call.pk}/").json()["analysis"]
    assert (detail["version"], detail["lead_quality"]) == (2, "cold")
    # the model's own answer is stored beside the correction
    assert CallAnalysis.objects.get(call=call, version=2).lead_quality == "hot"


def test_an_interrupted_pass_resumes_without_reanalysing_the_calls_done(acme, sandbox, monkeypatch):
    calls = [
        analysed_call(acme, started_at=FRIDAY_1640 + datetime.timedelta(minutes=i))
        for i in range(4)
    ]
    requests_before = len(sandbox.recorded("openai"))
    draw = reanalyze.ProgressBar.__call__

    def interrupt_after_two(self, counts, total):
        draw(self, counts, total)
        if counts.total() == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(reanalyze.ProgressBar, "__call__", interrupt_after_two)
    with pytest.raises(CommandError, match="Run the same command again to resume"):
        run("--since", "2026-03-06", "--until", "2026-03-06")
    assert [len(versions(c)) for c in calls] == [2, 2, 1, 1]

    monkeypatch.setattr(reanalyze.ProgressBar, "__call__", draw)
    run("--since", "2026-03-06", "--until", "2026-03-06")

    # each call re-analysed exactly once over both runs: 4 requests, 2 versions each
    assert [versions(c) for c in calls] == [[(1, False), (2, True)]] * 4
    assert len(sandbox.recorded("openai")) - requests_before == 4
    assert Reanalysis.objects.get(company=acme).finished_at is not None
    # a finished pass run again is a new pass: every call gets a third version
    run("--since", "2026-03-06", "--until", "2026-03-06")
    assert [len(versions(c)) for c in calls] == [3, 3, 3, 3]


def test_prompt_version_selects_the_calls_analysed_with_another_prompt(acme, sandbox):
    old, current = analysed_call(acme), analysed_call(acme, "card_number")
    CallAnalysis.objects.filter(call=old).update(prompt_version="2026-01-01.v0")

    run(
        "--since",
        "2026-03-06",
        "--until",
        "2026-03-06",
        "--prompt-version",
        services.PROMPT_VERSION,
    )

    assert versions(old) == [(1, False), (2, True)]
    assert CallAnalysis.objects.get(call=old, is_current=True).prompt_version == (
        services.PROMPT_VERSION
    )
    assert versions(current) == [(1, True)]


def test_a_prompt_version_this_code_does_not_send_is_refused(acme, sandbox):
    call = analysed_call(acme)

    with pytest.raises(CommandError, match="analyses with prompt version"):
        run("--since", "2026-03-06", "--until", "2026-03-06", "--prompt-version", "v-old")

    assert versions(call) == [(1, True)]


def test_a_call_that_failed_in_analysis_is_analysed_again(acme, sandbox, monkeypatch):
    from analysis import analyzers

    call = transcribed_call(acme)
    with monkeypatch.context() as patched:
        patched.setattr(analyzers, "check_citations", lambda output, sent: [999])
        assert services.analyze_call(call.pk) == Stage.FAILED

    run("--since", "2026-03-06", "--until", "2026-03-06")

    call.refresh_from_db()
    assert call.stage == Stage.ANALYZED and call.last_error == ""
    assert versions(call) == [(1, True)]


def test_a_dry_run_counts_and_writes_nothing(acme, sandbox, capsys):
    call = analysed_call(acme)
    requests_before = len(sandbox.recorded("openai"))

    run("--since", "2026-03-06", "--until", "2026-03-06", "--dry-run")

    assert "1 call(s) of Acme" in capsys.readouterr().out
    assert versions(call) == [(1, True)]
    assert len(sandbox.recorded("openai")) == requests_before
    assert not Reanalysis.objects.exists()


def test_without_a_key_nothing_is_moved(acme, sandbox, settings):
    call = analysed_call(acme)
    settings.OPENAI_API_KEYS = []

    with pytest.raises(CommandError, match="no OpenAI API key"):
        run("--since", "2026-03-06", "--until", "2026-03-06")

    call.refresh_from_db()
    assert call.stage == Stage.ANALYZED and versions(call) == [(1, True)]


def test_reanalysis_hands_the_call_on_again(acme, sandbox, monkeypatch):
    # The outcomes stage takes calls from `analyzed`; a new version must reach it.
    call = analysed_call(acme)
    handed: list[int] = []
    # (in place of the outcomes stage appointments registers)
    monkeypatch.setitem(pipeline._HANDOFFS, Stage.ANALYZED, lambda c: handed.append(c.pk))

    assert services.reanalyze_call(call, run_now=True) == Stage.ANALYZED

    assert handed == [call.pk]


def test_a_call_the_pipeline_moved_meanwhile_is_left_alone(acme, sandbox):
    call = analysed_call(acme)
    seen = Call.objects.get(pk=call.pk)
    # another worker claims it between our read and our move
    Call.objects.filter(pk=call.pk).update(stage=Stage.APPLIED)

    with pytest.raises(services.ReanalysisRefused, match="changed stage"):
        services.reanalyze_call(seen, run_now=True)

    assert versions(call) == [(1, True)]
    assert Call.objects.get(pk=call.pk).stage == Stage.APPLIED
