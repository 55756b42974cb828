"""The inbox itself: one-statement storage, claimed processing, failures, the admin replay."""

from __future__ import annotations

import datetime
import threading
import time

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations import inbox, services
from integrations.models import Provider, WebhookEvent
from integrations.tasks import process_webhook_event
from otto.crypto import Secret
from otto.models import CallRailCompany, Company
from otto.webhooks import clerk as clerk_webhooks
from tests.conftest import wait_for
from tests.integrations.fixtures import (
    CLERK_SECRET,
    load,
    post_callrail,
    post_clerk,
    run_pushed_tasks,
)

Status = WebhookEvent.Status
ORG = "org_2aAcmeHeating0000000000"
CHANGELIST = "/admin/integrations/webhookevent/"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.CLERK_WEBHOOK_SECRET = CLERK_SECRET
    # The admin pages render without collectstatic's manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def stored_org_created(client) -> WebhookEvent:
    """An organization.created delivery, stored and not yet processed."""
    response = post_clerk(client, load("clerk", "organization.created"))
    assert response.status_code == 200
    return WebhookEvent.objects.get(pk=response.json()["id"])


def in_threads(count: int, target) -> list:
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# --- storage -------------------------------------------------------------------------------


def test_concurrent_deliveries_of_one_event_store_one_row(transactional_db):
    incoming = inbox.Incoming(event_type="user.created", dedupe_key="msg_concurrent")

    results = in_threads(
        8, lambda: inbox.store_event(Provider.CLERK, incoming, {"svix-id": "msg_concurrent"}, b"{}")
    )

    assert WebhookEvent.objects.count() == 1
    assert sum(created for _, created in results) == 1
    assert {event_id for event_id, _ in results} == {WebhookEvent.objects.get().pk}


def test_an_accepted_delivery_enqueues_its_processing_once(
    db, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_clerk(client, load("clerk", "organization.created"), msg_id="msg_1")
        post_clerk(client, load("clerk", "organization.created"), msg_id="msg_1")

    assert len(callbacks) == 1
    _queue, path, ids, _request_id = callbacks[0].args
    assert path == process_webhook_event.task_path
    assert ids == (response.json()["id"],)


# --- processing ----------------------------------------------------------------------------


def test_two_tasks_for_one_event_run_the_handler_once(transactional_db, client, monkeypatch):
    event = stored_org_created(client)
    calls = []
    real = clerk_webhooks.HANDLERS["organization.created"]

    def counting(event):
        calls.append(event.pk)
        time.sleep(0.3)  # hold the event long enough for the other task to try
        return real(event)

    monkeypatch.setitem(clerk_webhooks.HANDLERS, "organization.created", counting)

    in_threads(2, lambda: process_webhook_event(event.pk))

    event.refresh_from_db()
    assert calls == [event.pk]
    assert (event.status, event.attempts) == (Status.PROCESSED, 1)
    assert Company.objects.filter(clerk_org_id=ORG).count() == 1


def test_a_task_run_again_after_success_changes_nothing(db, client):
    event = stored_org_created(client)
    process_webhook_event(event.pk)

    process_webhook_event(event.pk)

    event.refresh_from_db()
    assert (event.status, event.attempts) == (Status.PROCESSED, 1)


def test_a_handler_exception_marks_the_event_failed_and_rolls_its_writes_back(
    db, client, monkeypatch
):
    event = stored_org_created(client)

    def half_done(event):
        Company.objects.create(name="Half", slug="half", clerk_org_id=ORG)
        raise RuntimeError("geocoder exploded")

    monkeypatch.setitem(clerk_webhooks.HANDLERS, "organization.created", half_done)

    process_webhook_event(event.pk)  # does not raise: no crash loop in the worker

    event.refresh_from_db()
    assert event.status == Status.FAILED
    assert event.last_error == "RuntimeError: geocoder exploded"
    assert event.processed_at is None
    assert not Company.objects.exists()


# --- the reaper: Redis delivery is at-most-once --------------------------------------------


def _age(event: WebhookEvent, **fields) -> None:
    WebhookEvent.objects.filter(pk=event.pk).update(**fields)


def test_the_reaper_requeues_an_event_whose_task_was_lost(
    db, client, django_capture_on_commit_callbacks
):
    event = stored_org_created(client)  # its push to Redis never reached a worker
    _age(event, received_at=timezone.now() - datetime.timedelta(minutes=6))

    with django_capture_on_commit_callbacks() as callbacks:
        outcome = services.reap_events()
    run_pushed_tasks(callbacks)

    event.refresh_from_db()
    assert outcome["enqueued"] == 1
    assert event.status == Status.PROCESSED
    assert Company.objects.filter(clerk_org_id=ORG).exists()


def test_the_reaper_retries_an_event_whose_worker_died_then_gives_up(
    db, client, django_capture_on_commit_callbacks, settings
):
    settings.PIPELINE_MAX_ATTEMPTS = 2
    event = stored_org_created(client)
    long_ago = timezone.now() - datetime.timedelta(minutes=30)
    # a worker claimed it and was killed mid-task
    _age(event, status=Status.PROCESSING, attempts=1, claimed_at=long_ago, received_at=long_ago)

    with django_capture_on_commit_callbacks() as callbacks:
        services.reap_events()
    event.refresh_from_db()
    assert event.status == Status.RECEIVED and len(callbacks) == 1

    # killed again on the second attempt
    _age(event, status=Status.PROCESSING, attempts=2, claimed_at=long_ago)
    services.reap_events()
    event.refresh_from_db()
    assert event.status == Status.FAILED and "gave up after 2 attempts" in event.last_error


def test_the_reaper_re_enqueues_a_callrail_event_whose_task_was_lost(
    db, client, django_capture_on_commit_callbacks
):
    key = "072e77e426f92738a72fe23c4d1953b4"
    company = Company.objects.create(
        name="Acme",
        slug="acme",
        callrail_signing_key=Secret(key),
    )
    CallRailCompany.objects.create(company=company, callrail_company_id="155920786")
    response = post_callrail(
        client, "call.completed", load("callrail", "call.completed.answered"), key
    )
    event = WebhookEvent.objects.get(pk=response.json()["id"])
    _age(event, received_at=timezone.now() - datetime.timedelta(hours=1))

    with django_capture_on_commit_callbacks() as callbacks:
        services.reap_events()

    assert [c.args[1:3] for c in callbacks] == [
        ("integrations.tasks.process_webhook_event", (event.pk,))
    ]
    event.refresh_from_db()
    assert event.status == Status.RECEIVED


# --- the admin -----------------------------------------------------------------------------


@pytest.fixture
def failed_event(db, client, monkeypatch) -> WebhookEvent:
    event = stored_org_created(client)

    def broken(event):
        raise RuntimeError("bug in the handler")

    with monkeypatch.context() as patch:
        patch.setitem(clerk_webhooks.HANDLERS, "organization.created", broken)
        process_webhook_event(event.pk)
    event.refresh_from_db()
    assert event.status == Status.FAILED
    return event


def test_the_admin_lists_and_filters_events(admin_client, failed_event):
    response = admin_client.get(CHANGELIST, {"provider__exact": "clerk", "status__exact": "failed"})
    assert response.status_code == 200
    assert failed_event.dedupe_key in response.content.decode()

    response = admin_client.get(CHANGELIST, {"status__exact": "processed"})
    assert failed_event.dedupe_key not in response.content.decode()


def test_the_admin_shows_headers_and_body_read_only(admin_client, failed_event):
    response = admin_client.get(f"{CHANGELIST}{failed_event.pk}/change/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "svix-signature" in page and "Acme Heating &amp; Air" in page
    assert 'name="_save"' not in page
    assert "bug in the handler" in page


def test_the_admin_replay_action_reprocesses_a_failed_event(admin_client, failed_event):
    response = admin_client.post(
        CHANGELIST,
        {"action": "replay_selected", "_selected_action": [failed_event.pk]},
        follow=True,
    )

    failed_event.refresh_from_db()
    assert failed_event.status == Status.PROCESSED
    assert failed_event.attempts == 2
    assert Company.objects.filter(clerk_org_id=ORG).exists()
    assert "Replayed: 1 processed." in response.content.decode()


def test_the_admin_replay_button_reprocesses_one_event(admin_client, failed_event):
    url = reverse("admin:integrations_webhookevent_replay", args=[failed_event.pk])

    response = admin_client.post(url)

    assert response.status_code == 302
    failed_event.refresh_from_db()
    assert failed_event.status == Status.PROCESSED


def test_replay_checks_the_stored_signature_again(admin_client, failed_event):
    WebhookEvent.objects.filter(pk=failed_event.pk).update(
        body=failed_event.body.replace("Acme Heating & Air", "Evil Corp")
    )

    response = admin_client.post(
        CHANGELIST,
        {"action": "replay_selected", "_selected_action": [failed_event.pk]},
        follow=True,
    )

    failed_event.refresh_from_db()
    assert failed_event.status == Status.FAILED
    assert not Company.objects.exists()
    assert "signature no longer verifies" in response.content.decode()


def test_non_staff_cannot_replay(failed_event, django_user_model):
    user = django_user_model.objects.create_user("csr", password="pw", is_staff=False)
    client = Client()
    client.force_login(user)

    response = client.post(
        CHANGELIST, {"action": "replay_selected", "_selected_action": [failed_event.pk]}
    )
    button = client.post(reverse("admin:integrations_webhookevent_replay", args=[failed_event.pk]))

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert button.status_code == 302 and "/admin/login/" in button["Location"]
    failed_event.refresh_from_db()
    assert (failed_event.status, failed_event.attempts) == (Status.FAILED, 1)


def test_staff_without_change_permission_cannot_replay(failed_event, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)

    response = client.post(
        reverse("admin:integrations_webhookevent_replay", args=[failed_event.pk])
    )

    assert response.status_code == 403
    failed_event.refresh_from_db()
    assert failed_event.status == Status.FAILED


def test_replay_never_moves_an_event_to_another_tenant(admin_client, client, db):
    key = "072e77e426f92738a72fe23c4d1953b4"
    acme = Company.objects.create(
        name="Acme",
        slug="acme",
        callrail_signing_key=Secret(key),
    )
    CallRailCompany.objects.create(company=acme, callrail_company_id="155920786")
    globex = Company.objects.create(name="Globex", slug="globex", callrail_signing_key=Secret(key))
    response = post_callrail(
        client, "call.completed", load("callrail", "call.completed.answered"), key
    )
    event = WebhookEvent.objects.get(pk=response.json()["id"])
    assert event.company == acme
    # ops move the CallRail company id to another tenant (a misconfiguration)
    CallRailCompany.objects.filter(callrail_company_id="155920786").update(company=globex)

    page = admin_client.post(
        CHANGELIST, {"action": "replay_selected", "_selected_action": [event.pk]}, follow=True
    )

    event.refresh_from_db()
    assert event.company == acme
    assert event.status == Status.RECEIVED
    assert "it was not moved" in event.last_error
    assert "Not replayed" in page.content.decode()


def test_a_handler_cannot_attach_an_event_to_another_tenant(db, client, monkeypatch):
    acme = Company.objects.create(name="Acme", slug="acme", clerk_org_id="org_acme")
    globex = Company.objects.create(name="Globex", slug="globex", clerk_org_id="org_globex")
    event = stored_org_created(client)
    WebhookEvent.objects.filter(pk=event.pk).update(company=acme)
    monkeypatch.setitem(
        clerk_webhooks.HANDLERS,
        "organization.created",
        lambda event: inbox.HandlerResult(company=globex),
    )

    assert services.process_event(event.pk) == Status.FAILED

    event.refresh_from_db()
    assert event.company == acme and "TenantMismatch" in event.last_error


def test_a_deferred_event_replayed_by_hand_converges(admin_client, db, client):
    membership = post_clerk(client, load("clerk", "organizationMembership.created"))
    event = WebhookEvent.objects.get(pk=membership.json()["id"])
    process_webhook_event(event.pk)
    event.refresh_from_db()
    assert event.status == Status.UNMATCHED
    Company.objects.create(name="Acme", slug="acme", clerk_org_id=ORG)  # set up by ops

    admin_client.post(CHANGELIST, {"action": "replay_selected", "_selected_action": [event.pk]})

    event.refresh_from_db()
    assert event.status == Status.PROCESSED
    assert event.company.memberships.get().user.clerk_user_id == "user_2aDanaLee00000000000000"


# --- end to end through a real worker ------------------------------------------------------


@pytest.mark.cluster
def test_a_delivery_is_processed_by_a_real_qcluster(start_qcluster):
    start_qcluster(CLERK_WEBHOOK_SECRET=CLERK_SECRET)

    response = post_clerk(Client(), load("clerk", "organization.created"))
    assert response.status_code == 200

    event_id = response.json()["id"]
    wait_for(lambda: WebhookEvent.objects.get(pk=event_id).status == Status.PROCESSED)
    assert Company.objects.get(clerk_org_id=ORG).name == "Acme Heating & Air"
