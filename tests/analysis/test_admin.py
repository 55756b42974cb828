"""The call's admin page with its analysis beside the transcript, and the re-run of analysis
from the admin (audited, staff only); the read-only list of analysis versions."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from analysis import services
from analysis.models import CallAnalysis
from calls.models import Call, CallStageChange
from tests.analysis.conftest import ANALYZE, transcribed_call

Stage = Call.Stage


@pytest.fixture
def analysed(acme, sandbox) -> Call:
    call = transcribed_call(acme, "booked")
    assert services.analyze_call(call.pk) == Stage.ANALYZED
    call.refresh_from_db()
    return call


def utterance_div(html: str, index: int) -> str:
    match = re.search(rf'<div class="utt( cited)?" id="utterance-{index}">.*?</div>', html)
    assert match, f"utterance {index} is not on the page"
    return match.group(0)


def test_the_call_page_shows_the_analysis_beside_the_transcript_with_citations(
    admin_client, analysed, acme_manager
):
    analysis = CallAnalysis.objects.get(call=analysed)
    services.update_overrides(
        analysed.company, analysis, {"lead_quality": "cold"}, user=acme_manager.membership.user
    )

    page = admin_client.get(f"/admin/calls/call/{analysed.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Thanks for calling Acme" in html and "No analysis yet" not in html
    # each cited utterance is highlighted and names the fields that cite it
    booked = analysis.citations["appointment"][-1]
    div = utterance_div(html, booked)
    assert 'class="utt cited"' in div and "tomorrow at 9 am" in div
    assert '<span class="tag">appointment</span>' in div
    cited = {i for ids in analysis.citations.values() for i in ids}
    uncited = next(i for i in range(len(analysed.transcript.utterances)) if i not in cited)
    assert 'class="utt"' in utterance_div(html, uncited)
    # the correction is shown over the model's value
    assert re.search(
        r'<th>lead_quality</th><td><span class="fixed">corrected</span>cold'
        r'<div class="model">hot</div>',
        html,
    )
    assert f'href="#utterance-{booked}"' in html
    assert "Re-run analysis" in html


def test_the_page_of_a_call_not_analysed_yet_says_so(admin_client, acme, sandbox):
    call = transcribed_call(acme, "booked")

    html = admin_client.get(f"/admin/calls/call/{call.pk}/change/").content.decode()

    assert "No analysis yet." in html and "Thanks for calling Acme" in html


def test_a_failed_attempt_is_listed_on_the_page(admin_client, acme, sandbox):
    call = transcribed_call(acme, "booked")
    sandbox.inject("openai.responses", "refusal", count=1)
    services.analyze_call(call.pk)

    html = admin_client.get(f"/admin/calls/call/{call.pk}/change/").content.decode()

    assert "Failed attempts" in html and "model refused" in html


def test_rerunning_one_call_from_its_page_is_audited_and_analyses_it(
    admin_client, analysed, run_tasks
):
    with run_tasks() as worker:
        response = admin_client.post(f"/admin/calls/call/{analysed.pk}/reanalyze/")

    assert response.status_code == 302
    assert ("analysis", ANALYZE, (analysed.pk,)) in worker.pushed
    versions = CallAnalysis.objects.filter(call=analysed).order_by("version")
    assert [(a.version, a.is_current) for a in versions] == [(1, False), (2, True)]
    audit = CallStageChange.objects.get(
        call=analysed, to_stage=Stage.TRANSCRIBED, actor__isnull=False
    )
    assert audit.from_stage == Stage.ANALYZED and audit.actor.is_staff
    assert audit.reason == "re-analysis requested by ops (admin)"


def test_rerunning_a_selection_across_tenants_refuses_what_cannot_run(
    admin_client, analysed, globex, sandbox, worker, django_capture_on_commit_callbacks
):
    other = transcribed_call(globex, "booked")
    services.analyze_call(other.pk)
    not_transcribed = transcribed_call(globex, "booked")
    Call.objects.filter(pk=not_transcribed.pk).update(stage=Stage.RECORDED)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/calls/call/",
            {
                "action": "rerun_analysis",
                "_selected_action": [analysed.pk, other.pk, not_transcribed.pk],
            },
            follow=True,
        )

    html = response.content.decode()
    assert "Re-analysis requested for 2 call(s)." in html
    # (the admin capitalises its messages)
    assert f"Call {not_transcribed.pk}: the call is recorded" in html
    assert worker.count(ANALYZE) == 2
    # each under its own company: the audit row carries the call's tenant
    for call in (analysed, other):
        audit = CallStageChange.objects.get(call=call, actor__isnull=False)
        assert audit.company_id == call.company_id and audit.to_stage == Stage.TRANSCRIBED
    assert Call.objects.get(pk=not_transcribed.pk).stage == Stage.RECORDED


def test_a_user_who_is_not_staff_cannot_rerun(analysed, acme_manager):
    user = acme_manager.membership.user
    user.set_password("pw")
    user.save()
    client = Client()
    client.login(username=user.username, password="pw")

    response = client.post(f"/admin/calls/call/{analysed.pk}/reanalyze/")

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert CallAnalysis.objects.filter(call=analysed).count() == 1
    assert Call.objects.get(pk=analysed.pk).stage == Stage.ANALYZED


def test_the_versions_list_is_read_only(admin_client, analysed):
    analysis = CallAnalysis.objects.get(call=analysed)

    listed = admin_client.get(f"/admin/analysis/callanalysis/?call__id__exact={analysed.pk}")
    page = admin_client.get(f"/admin/analysis/callanalysis/{analysis.pk}/change/")
    posted = admin_client.post(
        f"/admin/analysis/callanalysis/{analysis.pk}/change/", {"summary": "edited"}
    )

    assert listed.status_code == 200 and "otto-sandbox-rules-v1" in listed.content.decode()
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert posted.status_code == 403
    assert CallAnalysis.objects.get(pk=analysis.pk).summary != "edited"


def test_an_objection_highlights_the_utterance_it_came_from(admin_client, acme, sandbox):
    call = transcribed_call(acme, "price_objection")
    services.analyze_call(call.pk)
    (objection, *_) = CallAnalysis.objects.get(call=call).objections

    html = admin_client.get(f"/admin/calls/call/{call.pk}/change/").content.decode()

    div = utterance_div(html, objection["utterance"])
    assert 'class="utt cited"' in div and '<span class="tag">objections</span>' in div
    assert f"<th>objections</th><td>{objection['category']}:" in html
