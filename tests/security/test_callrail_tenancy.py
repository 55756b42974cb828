"""Issue 9 §1: one tenant never reaches another's CallRail calls.

Globex (the attacker) has a manager and its own CallRail account; Acme (the victim) is on
CallRail with its own key, account, company id and signing key. The attack is the one
reported: copy the victim's account and company ids onto the attacker's tenant, let
reconciliation list them, and send the victim's webhook.
"""

from __future__ import annotations

import datetime
import hashlib
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from calls import sweeps
from calls.models import Call
from integrations import services as inbox_services
from integrations.models import WebhookEvent
from otto.models import CallRailCompany, Company, PhoneNumber
from otto.selectors import callrail_client
from tests.api.test_company import register_callrail
from tests.calls.conftest import ACCOUNT, ACME_COM, ACME_KEY, GLOBEX_KEY, make_calls
from tests.integrations.fixtures import load, post_callrail

URL = "/api/v1/company/"
Status = WebhookEvent.Status
ATTACKER_ACCOUNT = "ACC-globex"
ATTACKER_KEY = "globex-own-api-key"


@pytest.fixture
def victim(acme_callrail):
    """Acme: its own CallRail key, the sandbox account, COM… and legacy ids."""
    return acme_callrail


@pytest.fixture
def attacker(globex_manager, sandbox):
    """Globex's manager, with a CallRail account and key of Globex's own."""
    register_callrail(sandbox, ATTACKER_ACCOUNT, ATTACKER_KEY, "COM-globex")
    response = globex_manager.client().patch(
        URL,
        {
            "callrail_account_id": ATTACKER_ACCOUNT,
            "callrail_api_key": ATTACKER_KEY,
            "callrail_signing_key": GLOBEX_KEY,
            "callrail_company_ids": ["COM-globex"],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    return globex_manager


def test_the_reported_attack_gets_409_422_and_none_of_the_victims_calls(
    victim, attacker, sandbox, client, run_tasks
):
    make_calls(sandbox, 2, company_id=ACME_COM, days=0.2)
    manager = attacker.client()

    # the victim's company id, already claimed by the victim: 409, nothing changes
    taken = manager.patch(
        URL,
        {"callrail_account_id": ACCOUNT, "callrail_company_ids": [ACME_COM]},
        format="json",
    )
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "callrail_company_taken"
    # an id of the victim's account that nobody claimed yet: the attacker's key does not list it
    unclaimed = manager.patch(
        URL,
        {"callrail_account_id": ACCOUNT, "callrail_company_ids": ["COM0000sandbox"]},
        format="json",
    )
    assert unclaimed.status_code == 422
    attacker_company = Company.objects.get(pk=attacker.company.pk)
    assert attacker_company.callrail_account_id == ATTACKER_ACCOUNT
    assert list(
        CallRailCompany.objects.filter(company=attacker_company).values_list(
            "callrail_company_id", flat=True
        )
    ) == ["COM-globex"]

    # reconciliation reads each tenant with its own key only
    with run_tasks():
        sweeps.reconcile_callrail()
        sweeps.reconcile_company(attacker_company, now=timezone.now() + datetime.timedelta(hours=1))
    # and the victim's webhook, signed with the victim's key, lands with the victim
    response = post_callrail(
        client, "call.completed", load("callrail", "call.completed.answered"), ACME_KEY
    )

    assert response.status_code == 200
    assert not Call.objects.filter(company=attacker_company).exists()
    assert not WebhookEvent.objects.filter(company=attacker_company).exists()
    lists = sandbox.recorded("callrail.calls.list")
    assert lists and all(
        r["headers"].get("authorization") != f'Token token="{ATTACKER_KEY}"'
        or f"/a/{ATTACKER_ACCOUNT}/" in r["path"]
        for r in lists
    )


def test_the_deployment_key_reads_for_no_tenant_unless_it_is_the_single_tenant(
    acme, settings, sandbox
):
    acme.callrail_account_id = ACCOUNT
    acme.save()

    with pytest.raises(Exception, match="no CallRail API key"):
        callrail_client(acme)

    settings.CALLRAIL_SINGLE_TENANT = "acme"
    assert callrail_client(acme).api_key == settings.CALLRAIL_API_KEY
    settings.CALLRAIL_SINGLE_TENANT = "someone-else"
    with pytest.raises(Exception, match="no CallRail API key"):
        callrail_client(acme)


def test_a_tenant_without_its_own_key_is_skipped_by_reconciliation_and_backfill(
    victim, sandbox, run_tasks, caplog
):
    victim.callrail_api_key = None
    victim.save()
    make_calls(sandbox, 2, company_id=ACME_COM, days=1)

    with run_tasks() as worker:
        assert sweeps.reconcile_callrail() == []
        assert sweeps.reconcile_company(victim) == {"new": 0, "known": 0}
    with pytest.raises(CommandError, match="no CallRail API key of its own"):
        call_command("backfill_calls", "--company", "acme", "--since", "2026-01-01")

    assert worker.pushed == [] and sandbox.recorded("callrail.calls.list") == []
    assert "skips company" in caplog.text


def test_an_inactive_tenant_is_skipped_by_backfill_and_webhooks(victim, sandbox, client):
    Company.objects.filter(pk=victim.pk).update(is_active=False)

    with pytest.raises(CommandError, match="inactive"):
        call_command("backfill_calls", "--company", "acme", "--since", "2026-01-01")
    response = post_callrail(
        client, "call.completed", load("callrail", "call.completed.answered"), ACME_KEY
    )

    assert response.status_code == 401
    event = WebhookEvent.objects.get()
    assert (event.status, event.company) == (Status.UNMATCHED, None)
    assert sandbox.recorded("callrail.calls.list") == []


def _visible(response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k.lower() != "x-request-id"}
    body = json.loads(response.content)
    body["error"].pop("request_id")
    return response.status_code, json.dumps(body).encode(), headers


def test_a_bad_signature_and_an_unknown_tenant_look_the_same(victim, client):
    payload = load("callrail", "call.completed.answered")
    bad_signature = post_callrail(client, "call.completed", payload, "not-acmes-key")
    CallRailCompany.objects.filter(company=victim).delete()
    Company.objects.filter(pk=victim.pk).update(callrail_signing_key=None)
    PhoneNumber.objects.filter(company=victim).delete()
    unknown = post_callrail(client, "call.completed", payload, "not-acmes-key")

    assert _visible(bad_signature) == _visible(unknown)
    assert bad_signature.status_code == 401
    assert b"company" not in bad_signature.content.lower()
    assert bad_signature.content.replace(
        bad_signature["X-Request-ID"].encode(), b""
    ) == unknown.content.replace(unknown["X-Request-ID"].encode(), b"")
    # ops still see the unknown tenant's delivery, with why
    event = WebhookEvent.objects.get()
    assert event.status == Status.UNMATCHED and "unknown tenant" in event.last_error


def test_an_unknown_tenants_large_body_is_stored_as_its_hash_and_not_replayed(db, client, settings):
    settings.WEBHOOK_UNVERIFIED_MAX_BYTES = 2048
    payload = load("callrail", "call.completed.answered") | {"note": "x" * 4096}
    body = json.dumps(payload).encode()

    assert post_callrail(client, "call.completed", payload, ACME_KEY).status_code == 401

    event = WebhookEvent.objects.get()
    assert len(event.body) < 200 and hashlib.sha256(body).hexdigest() in event.body
    with pytest.raises(inbox_services.ReplayRefused, match="not stored whole"):
        inbox_services.replay_event(event)
    event.refresh_from_db()
    assert event.status == Status.UNMATCHED and "not stored whole" in event.last_error


def test_a_small_unknown_body_is_stored_whole(db, client):
    payload = load("callrail", "call.completed.answered")

    post_callrail(client, "call.completed", payload, ACME_KEY)

    assert json.loads(WebhookEvent.objects.get().body) == payload


def test_unknown_tenant_deliveries_are_rate_limited_per_source_ip(db, client, settings):
    settings.ENABLE_RATE_LIMITING = True
    settings.WEBHOOK_UNVERIFIED_RATE = "3/minute"
    payload = load("callrail", "call.completed.answered")

    answers = [
        post_callrail(client, "call.completed", payload | {"id": n}, ACME_KEY) for n in range(4)
    ]
    other_ip = client.post(
        "/callrail/call.completed",
        data=json.dumps(payload | {"id": 9}),
        content_type="application/json",
        REMOTE_ADDR="203.0.113.9",
    )

    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert int(answers[-1]["Retry-After"]) >= 1
    assert answers[-1].json()["error"]["code"] == "throttled"
    assert other_ip.status_code == 401
    assert WebhookEvent.objects.count() == 4  # three from the first address, one from the other


def test_a_verified_tenants_deliveries_are_not_rate_limited(victim, client, settings):
    settings.ENABLE_RATE_LIMITING = True
    settings.WEBHOOK_UNVERIFIED_RATE = "1/minute"
    payload = load("callrail", "call.completed.answered")

    answers = [
        post_callrail(client, "call.completed", payload | {"id": n}, ACME_KEY) for n in range(3)
    ]

    assert [a.status_code for a in answers] == [200, 200, 200]


def test_unmatched_and_failed_events_are_purged_after_the_window(victim, client, settings):
    settings.WEBHOOK_UNVERIFIED_RETENTION_DAYS = 7
    payload = load("callrail", "call.completed.answered")
    post_callrail(client, "call.completed", payload, ACME_KEY)  # received, kept
    post_callrail(
        client,
        "call.completed",
        payload
        | {
            "company_id": 1,
            "company_resource_id": None,
            "tracking_phone_number": None,
            "trackingnum": None,
        },
        ACME_KEY,
    )  # unmatched
    kept, unmatched = WebhookEvent.objects.order_by("pk")
    WebhookEvent.objects.filter(pk=kept.pk).update(status=Status.FAILED)
    old = timezone.now() - datetime.timedelta(days=8)
    WebhookEvent.objects.update(received_at=old)
    fresh = WebhookEvent.objects.create(
        provider=kept.provider,
        dedupe_key="fresh",
        event_type="call.completed",
        received_at=timezone.now(),
        headers={},
        body="{}",
        status=Status.UNMATCHED,
    )
    processed = WebhookEvent.objects.create(
        provider=kept.provider,
        dedupe_key="done",
        event_type="call.completed",
        received_at=old,
        headers={},
        body="{}",
        status=Status.PROCESSED,
    )

    assert inbox_services.purge_events() == 2

    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {fresh.pk, processed.pk}


def test_the_purge_is_a_registered_daily_schedule():
    from integrations.tasks import purge_webhook_events
    from otto.schedules import registry

    job = registry()["purge-webhook-events"]

    assert job.func is purge_webhook_events and job.minutes == 24 * 60


def test_the_migration_reads_legacy_json_ids_as_distinct_strings():
    from importlib import import_module

    migration = import_module("otto.migrations.0003_callrail_companies")
    assert migration._claimed(["COM1", 155920786, "COM1", "", None, " COM2 "]) == [
        "COM1",
        "155920786",
        "COM2",
    ]


def test_the_single_tenant_setting_is_checked(settings):
    from otto.checks import check_callrail_single_tenant

    settings.ENVIRONMENT = "production"
    settings.CALLRAIL_SINGLE_TENANT, settings.CALLRAIL_API_KEY = "acme", None
    assert [e.id for e in check_callrail_single_tenant()] == ["otto.E007"]
    settings.CALLRAIL_SINGLE_TENANT, settings.CALLRAIL_API_KEY = "", "deployment-key"
    assert [e.id for e in check_callrail_single_tenant()] == ["otto.W008"]
    settings.CALLRAIL_SINGLE_TENANT, settings.CALLRAIL_ACCOUNT_ID = "acme", "ACC1"
    assert check_callrail_single_tenant() == []


def test_the_attackers_own_key_cannot_read_the_victims_account(attacker, victim, sandbox):
    make_calls(sandbox, 1, company_id=ACME_COM)
    attacker_company = Company.objects.get(pk=attacker.company.pk)
    attacker_company.callrail_account_id = ACCOUNT  # as if written behind the API's back

    with pytest.raises(Exception, match="HTTP 403"):
        list(callrail_client(attacker_company).iter_calls(*_today()))


def _today():
    now = timezone.now()
    return now - datetime.timedelta(days=1), now


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_ids_to_rows_and_keeps_the_oldest_claim():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("otto", "0002_company_transcriber_default")]
    after = [("otto", "0003_callrail_companies")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("otto", "Company")
        first = old.objects.create(name="A", slug="a", callrail_company_ids=["COM1", 155920786])
        second = old.objects.create(name="B", slug="b", callrail_company_ids=["COM1", "COM2"])

        executor = MigrationExecutor(connection)
        executor.migrate(after)

        rows = CallRailCompany.objects.order_by("callrail_company_id")
        assert [(r.callrail_company_id, r.company_id) for r in rows] == [
            ("155920786", first.pk),
            ("COM1", first.pk),
            ("COM2", second.pk),
        ]
    finally:
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        )
