"""The admin's pipeline page: who may see it and act on it, what each panel shows, the bulk
retry and the replay it offers, and a query count that does not grow with the data."""

from __future__ import annotations

import datetime
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import Task

from calls.models import Call, CallStageChange
from integrations.models import WebhookEvent
from otto.models import AuditAction, AuditEvent
from otto.webhooks import clerk as clerk_webhooks
from tests.api.factories import CallFactory
from tests.integrations.fixtures import CLERK_SECRET, load, post_clerk

PAGE = "/admin/calls/call/pipeline/"
RETRY = "/admin/calls/call/pipeline/retry/"
Stage = Call.Stage
TIMEOUT = "callrail: timed out after 10 s"


def failed(company, error: str, *, ago: datetime.timedelta = datetime.timedelta(hours=1)):
    """A call that failed in ingest ``ago``, with ``error``, as the pipeline leaves one."""
    call = CallFactory(company=company, stage=Stage.RECEIVED)
    when = timezone.now() - ago
    CallStageChange.objects.create(
        company=company, call=call, from_stage=Stage.INGESTING, to_stage=Stage.FAILED
    )
    Call.objects.filter(pk=call.pk).update(
        stage=Stage.FAILED, last_error=error, stage_changed_at=when, attempts=5
    )
    call.refresh_from_db()
    return call


def staff(django_user_model, *perms: str) -> Client:
    user = django_user_model.objects.create_user("ops", "ops@example.com", "pw", is_staff=True)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def failed_task(name: str, func: str, result: str = "RuntimeError: boom") -> Task:
    now = timezone.now()
    return Task.objects.create(
        id=f"{abs(hash((name, func))):032x}"[:32],
        name=name,
        func=func,
        started=now - datetime.timedelta(seconds=2),
        stopped=now,
        success=False,
        result=result,
    )


# --- who may see it -------------------------------------------------------------------------


def test_a_non_staff_user_is_sent_to_the_admin_login(client, django_user_model):
    user = django_user_model.objects.create_user("someone", "s@example.com", "pw")
    client.force_login(user)

    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_staff_without_the_view_calls_permission_get_403_and_no_link(django_user_model):
    client = staff(django_user_model)

    assert client.get(PAGE).status_code == 403
    assert PAGE not in client.get("/admin/").content.decode()


def test_staff_who_may_view_calls_see_the_page_but_no_retry_or_replay(
    django_user_model, admin_client, acme
):
    failed(acme, TIMEOUT)
    WebhookEvent.objects.create(
        provider="callrail", dedupe_key="k1", status="unmatched", last_error="no tenant"
    )
    client = staff(django_user_model, "calls.view_call")

    index = client.get("/admin/").content.decode()
    response = client.get(PAGE)

    assert f'href="{PAGE}"' in index
    assert response.status_code == 200
    page = response.content.decode()
    assert TIMEOUT in page and "no tenant" in page
    assert "Retry 1" not in page and ">Replay<" not in page
    superuser_page = admin_client.get(PAGE).content.decode()
    assert "Retry 1" in superuser_page and ">Replay<" in superuser_page
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    assert client.post(RETRY, {"error": TIMEOUT, "since": since}).status_code == 403


def test_the_superuser_index_links_to_the_page(admin_client):
    assert f'href="{PAGE}"' in admin_client.get("/admin/").content.decode()


# --- the panels -------------------------------------------------------------------------


def test_calls_per_stage_list_every_stage(admin_client, acme, globex):
    CallFactory.create_batch(3, company=acme, stage=Stage.DONE)
    CallFactory(company=globex, stage=Stage.DONE)
    failed(acme, TIMEOUT)

    page = admin_client.get(PAGE).content.decode()

    assert "Calls per stage now (5 in all)" in page
    assert re.search(r"stage__exact=done\"><b>4</b>Done", page)
    assert re.search(r"stage__exact=failed\"><b>1</b>Failed", page)
    assert re.search(r"<b>0</b>Transcribing", page)


def test_failures_are_grouped_by_error_and_link_to_exactly_their_calls(admin_client, acme, globex):
    timeouts = [failed(acme, TIMEOUT), failed(globex, TIMEOUT)]
    other = failed(acme, "deepgram: 402 payment required")
    old = failed(acme, TIMEOUT, ago=datetime.timedelta(days=2))

    response = admin_client.get(PAGE)

    groups = response.context["groups"]
    assert [(g["group"].error, g["group"].count) for g in groups] == [
        (TIMEOUT, 2),
        ("deepgram: 402 payment required", 1),
    ]
    listing = admin_client.get(groups[0]["calls_url"])
    assert listing.status_code == 200
    shown = {call.pk for call in listing.context["cl"].result_list}
    assert shown == {call.pk for call in timeouts}
    assert other.pk not in shown and old.pk not in shown


def test_a_long_error_groups_and_filters_by_its_first_200_characters(admin_client, acme):
    long_error = "x" * 250
    calls = [failed(acme, long_error + "a"), failed(acme, long_error + "b")]

    groups = admin_client.get(PAGE).context["groups"]

    assert [(len(g["group"].error), g["group"].count) for g in groups] == [(200, 2)]
    listing = admin_client.get(groups[0]["calls_url"])
    assert {c.pk for c in listing.context["cl"].result_list} == {c.pk for c in calls}


def test_queues_show_their_depth_and_heartbeat_age(admin_client, db):
    from otto.models import QueueHeartbeat

    QueueHeartbeat.objects.create(
        queue="asr",
        cluster="default",
        beat_at=timezone.now() - datetime.timedelta(seconds=42),
        host="worker-1",
        pid=7,
    )

    page = admin_client.get(PAGE).content.decode()

    row = re.search(r'<tr class="queue">\s*<th scope="row">asr</th>.*?</tr>', page, re.S)
    assert row and re.search(r"4[23] s", row.group(0))
    assert "never" in page  # the queues with no heartbeat yet


def test_the_calls_per_hour_chart_has_a_bar_for_each_hour_with_calls(admin_client, acme):
    now = timezone.now()
    for hours_ago, count in ((0, 2), (5, 1), (30, 3)):
        for call in CallFactory.create_batch(count, company=acme):
            Call.objects.filter(pk=call.pk).update(
                created_at=now - datetime.timedelta(hours=hours_ago)
            )
    # older than the chart's seven days
    Call.objects.filter(pk=CallFactory(company=acme).pk).update(
        created_at=now - datetime.timedelta(days=8)
    )

    page = admin_client.get(PAGE).content.decode()

    chart = re.search(r'<svg id="calls-per-hour".*?</svg>', page, re.S).group(0)
    assert '<title id="calls-per-hour-title">Calls received per hour' in chart
    assert "6 calls received" in chart
    assert sorted(re.findall(r'data-value="(\d+)"', chart)) == ["1", "2", "3"]


def test_the_median_to_applied_is_per_day(admin_client, acme):
    now = timezone.now()
    for minutes in (2, 4, 30):
        call = CallFactory(company=acme, stage=Stage.APPLIED)
        Call.objects.filter(pk=call.pk).update(created_at=now - datetime.timedelta(minutes=minutes))
        CallStageChange.objects.create(
            company=acme, call=call, from_stage=Stage.APPLYING, to_stage=Stage.APPLIED
        )

    page = admin_client.get(PAGE).content.decode()

    chart = re.search(r'<svg id="webhook-to-applied".*?</svg>', page, re.S).group(0)
    assert len(re.findall(r'<rect class="bar"', chart)) == 1
    assert "4.0 min over 3 calls" in chart


# --- bulk retry ----------------------------------------------------------------------------


def test_bulk_retry_retries_the_group_each_call_under_its_company(
    admin_client, admin_user, acme, globex, worker, django_capture_on_commit_callbacks
):
    group = [failed(acme, TIMEOUT), failed(globex, TIMEOUT)]
    other = failed(acme, "deepgram: 402 payment required")
    since = admin_client.get(PAGE).context["since"]

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            RETRY, {"error": TIMEOUT, "since": since.isoformat()}, follow=True
        )

    assert "Retry requested for 2 call(s)." in response.content.decode()
    for call in group:
        call.refresh_from_db()
        assert call.stage == Stage.RECEIVED and call.attempts == 0
        audit = CallStageChange.objects.filter(call=call, actor=admin_user).get()
        assert (audit.company_id, audit.from_stage) == (call.company_id, Stage.FAILED)
        assert "retried by ops from ingest" in audit.reason
    other.refresh_from_db()
    assert other.stage == Stage.FAILED
    assert worker.count("calls.tasks.ingest_call") == 2


def test_a_large_group_is_retried_a_batch_at_a_time(
    admin_client, acme, worker, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("calls.admin_pipeline.RETRY_BATCH", 2)
    calls = [failed(acme, TIMEOUT) for _ in range(3)]
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(RETRY, {"error": TIMEOUT, "since": since}, follow=True)

    page = response.content.decode()
    assert "Retry requested for 2 call(s)." in page
    assert "1 call(s) of that group are still failed; retry again for more." in page
    stages = [Call.objects.get(pk=call.pk).stage for call in calls]
    assert stages == [Stage.RECEIVED, Stage.RECEIVED, Stage.FAILED]  # the oldest failures first


def test_bulk_retry_needs_a_post_with_csrf(acme, admin_user):
    failed(acme, TIMEOUT)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()

    assert client.get(RETRY).status_code == 405
    assert client.post(RETRY, {"error": TIMEOUT, "since": since}).status_code == 403
    assert Call.objects.get().stage == Stage.FAILED


@pytest.mark.parametrize("since", ["", "yesterday", "2026-12-01T10:00:00"])
def test_bulk_retry_refuses_a_bad_group(admin_client, acme, since):
    failed(acme, TIMEOUT)

    response = admin_client.post(RETRY, {"error": TIMEOUT, "since": since})

    assert response.status_code == 400
    assert Call.objects.get().stage == Stage.FAILED


# --- the inbox -----------------------------------------------------------------------------


@pytest.fixture
def failed_event(db, client, monkeypatch, settings) -> WebhookEvent:
    settings.CLERK_WEBHOOK_SECRET = CLERK_SECRET
    response = post_clerk(client, load("clerk", "organization.created"))
    event = WebhookEvent.objects.get(pk=response.json()["id"])

    def broken(event):
        raise RuntimeError("bug in the handler")

    from integrations.tasks import process_webhook_event

    with monkeypatch.context() as patch:
        patch.setitem(clerk_webhooks.HANDLERS, "organization.created", broken)
        process_webhook_event(event.pk)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.FAILED
    return event


def test_failed_events_are_listed_and_replayed_from_the_page(admin_client, failed_event):
    page = admin_client.get(PAGE).content.decode()
    assert "0 unmatched, 1 failed" in page and "bug in the handler" in page

    replay = reverse("admin:calls_call_pipeline_replay", args=[failed_event.pk])
    response = admin_client.post(replay, follow=True)

    failed_event.refresh_from_db()
    assert failed_event.status == WebhookEvent.Status.PROCESSED
    assert f"Event {failed_event.pk} replayed: processed." in response.content.decode()
    # the replay is in the audit log, with the staff user who pressed the button
    replayed = AuditEvent.objects.get(action=AuditAction.WEBHOOK_REPLAYED)
    staff = response.wsgi_request.user
    assert (replayed.actor, replayed.target_id) == (staff, str(failed_event.pk))


def test_a_refused_replay_says_why(admin_client, failed_event):
    WebhookEvent.objects.filter(pk=failed_event.pk).update(body="otto:body-not-stored size=9")

    response = admin_client.post(
        reverse("admin:calls_call_pipeline_replay", args=[failed_event.pk]), follow=True
    )

    assert "Not replayed:" in response.content.decode()
    assert WebhookEvent.objects.get(pk=failed_event.pk).status == WebhookEvent.Status.FAILED


def test_replay_needs_the_change_webhook_events_permission(django_user_model, failed_event):
    client = staff(django_user_model, "calls.view_call", "calls.change_call")

    response = client.post(reverse("admin:calls_call_pipeline_replay", args=[failed_event.pk]))

    assert response.status_code == 403
    assert WebhookEvent.objects.get(pk=failed_event.pk).status == WebhookEvent.Status.FAILED


# --- django-q's failed tasks ---------------------------------------------------------------


def test_failed_tasks_link_to_their_call(admin_client, acme):
    call = failed(acme, TIMEOUT)
    failed_task(f"call {call.pk} · calls.tasks.ingest_call", "calls.tasks.ingest_call")
    failed_task("otto.tasks.heartbeat · 1a2b3c4d", "otto.tasks.heartbeat")
    link = f'href="/admin/calls/call/{call.pk}/change/">call {call.pk}</a>'

    page = admin_client.get(PAGE).content.decode()
    changelist = admin_client.get("/admin/django_q/failure/").content.decode()

    assert link in page and "calls.tasks.ingest_call" in page and "otto.tasks.heartbeat" in page
    assert link in changelist
    by_func = admin_client.get("/admin/django_q/failure/?func=calls.tasks.ingest_call")
    assert [task.func for task in by_func.context["cl"].result_list] == ["calls.tasks.ingest_call"]


# --- cost ------------------------------------------------------------------------------------


def seed(companies, n: int) -> None:
    now = timezone.now()
    for i in range(n):
        company = companies[i % len(companies)]
        call = failed(company, f"error {i % 3}")
        Call.objects.filter(pk=call.pk).update(created_at=now - datetime.timedelta(hours=i))
        CallStageChange.objects.create(
            company=company, call=call, from_stage=Stage.APPLYING, to_stage=Stage.APPLIED
        )
        failed_task(f"call {call.pk} · calls.tasks.ingest_call", "calls.tasks.ingest_call")
        WebhookEvent.objects.create(
            provider="callrail", dedupe_key=f"k{call.pk}", status=WebhookEvent.Status.UNMATCHED
        )


def test_the_page_costs_the_same_queries_at_any_size(
    admin_client, acme, globex, django_assert_num_queries, django_assert_max_num_queries
):
    seed([acme, globex], 3)
    admin_client.get(PAGE)  # the session and the user, warmed like the next requests
    with django_assert_max_num_queries(14) as small:
        admin_client.get(PAGE)

    seed([acme, globex], 40)
    with django_assert_num_queries(len(small.captured_queries)):
        response = admin_client.get(PAGE)

    assert response.status_code == 200
