"""The pipeline page as ops see it: the chart's bars, and a bulk retry that retries."""

from __future__ import annotations

import datetime

from django.utils import timezone

from calls.models import Call, CallStageChange
from tests.api.factories import CallFactory
from tests.browser.conftest import screenshot
from tests.calls.conftest import worker  # noqa: F401 -- records the retry's enqueues
from tests.calls.test_pipeline_page import PAGE, TIMEOUT, failed

Stage = Call.Stage


def test_the_chart_has_a_bar_per_busy_hour_and_a_group_retries(
    admin_page,
    live_server,
    admin_user,
    acme,
    globex,
    worker,  # noqa: F811
):
    # given: calls received in three hours of the week (one of each hour applied just
    # now), and two failures with one error
    now = timezone.now()
    for hours_ago, count in ((1, 3), (26, 1), (100, 2)):
        for call in CallFactory.create_batch(count, company=acme, stage=Stage.DONE):
            Call.objects.filter(pk=call.pk).update(
                created_at=now - datetime.timedelta(hours=hours_ago)
            )
        CallStageChange.objects.create(
            company=acme, call=call, from_stage=Stage.APPLYING, to_stage=Stage.APPLIED
        )
    group = [failed(acme, TIMEOUT), failed(globex, TIMEOUT)]
    page = admin_page

    # when
    page.goto(live_server.url + "/admin/")
    screenshot(page, "admin-index")
    page.get_by_role("link", name="Pipeline", exact=True).click()

    # then: one bar per hour with calls received (the failed calls are this hour's)
    page.wait_for_url(f"**{PAGE}")
    bars = page.locator("#calls-per-hour rect.bar")
    assert bars.count() == 4
    assert sorted(int(v) for v in bars.evaluate_all("rs => rs.map(r => r.dataset.value)")) == [
        1,
        2,
        2,
        3,
    ]
    assert page.locator("#calls-per-hour > title").text_content().startswith("Calls received")
    assert page.locator("#webhook-to-applied rect.bar").count() == 1  # all applied today
    row = page.locator("tr.failure-group", has_text=TIMEOUT)
    assert row.locator("td").first.inner_text() == "2"
    screenshot(page, "pipeline-page")

    row.get_by_role("button", name="Retry 2").click()

    page.wait_for_url(f"**{PAGE}#failures")
    assert page.get_by_text("Retry requested for 2 call(s).").is_visible()
    assert page.get_by_text("No call failed in the last 24 hours.").is_visible()
    screenshot(page, "pipeline-page-after-retry")
    for call in group:
        call.refresh_from_db()
        assert call.stage == Stage.RECEIVED
        assert CallStageChange.objects.filter(
            call=call, actor=admin_user, from_stage=Stage.FAILED
        ).exists()
    assert worker.count("calls.tasks.ingest_call") == 2
