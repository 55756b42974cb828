"""A call's page and its lead's page as ops read them: the transcript with the analysis'
cited utterances highlighted, the stage history, and the lead's status history."""

from __future__ import annotations

import pytest

from analysis.models import CallAnalysis
from appointments import pipeline
from appointments.models import Lead
from calls.models import Call
from tests.appointments.conftest import (  # noqa: F401 -- fixtures: stand-in worker, media in tmp
    _recordings_in_tmp,
    analysed_call,
    worker,
)
from tests.browser.conftest import screenshot

HIGHLIGHT = "rgba(255, 193, 7, 0.22)"


@pytest.fixture
def applied(acme, sandbox, worker):  # noqa: F811
    call = analysed_call(acme, "booked")
    pipeline.apply_call(call.pk)
    call.refresh_from_db()
    assert call.stage in (Call.Stage.APPLIED, Call.Stage.DONE)
    return call


def test_the_call_page_highlights_the_cited_utterance_and_lists_the_stages(
    admin_page, live_server, applied
):
    analysis = CallAnalysis.objects.get(call=applied)
    booked = analysis.citations["appointment"][-1]
    page = admin_page

    page.goto(f"{live_server.url}/admin/calls/call/{applied.pk}/change/")

    utterance = page.locator(f"#utterance-{booked}")
    assert "tomorrow at 9 am" in utterance.inner_text()
    assert utterance.evaluate("e => getComputedStyle(e).backgroundColor") == HIGHLIGHT
    assert "appointment" in utterance.locator(".tag").all_inner_texts()
    uncited = page.locator(".utt:not(.cited)").first
    assert uncited.evaluate("e => getComputedStyle(e).backgroundColor") != HIGHLIGHT
    page.locator(f'a[href="#utterance-{booked}"]').first.click()
    assert page.url.endswith(f"#utterance-{booked}")
    history = page.locator(".field-stage_history").inner_text()
    for move in ("recorded → transcribing", "transcribed → analyzing", "applying → applied"):
        assert move in history
    screenshot(page, "call-page")


def test_the_lead_page_shows_its_status_history(admin_page, live_server, applied):
    lead = Lead.objects.get(contact=applied.contact)
    page = admin_page

    page.goto(f"{live_server.url}/admin/appointments/lead/{lead.pk}/change/")

    rows = page.locator(".inline-related tbody tr.has_original, .inline-related tbody tr.form-row")
    assert rows.count() >= 1
    first = rows.first.inner_text()
    assert "first call, analysis v1" in first
    assert lead.get_status_display().lower() in first.lower() or lead.status in first
    # read-only evidence: shown as text, no input that looks editable, no save button
    assert page.locator(".field-status .readonly").inner_text() == lead.get_status_display()
    assert page.locator("#lead_form select, #lead_form input[type=text]").count() == 0
    assert page.locator('input[name="_save"]').count() == 0
    screenshot(page, "lead-page")
