"""Every audited action writes exactly one event of its kind, with the actor: recording
plays, role and membership changes (session token, Clerk webhook, admin), company
setting and secret changes (API and admin; names, never values), and ops' retries,
re-analyses, re-applied outcomes and webhook replays."""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings

from appointments import pipeline as outcomes_pipeline
from calls import stages
from calls.models import Call, RecordingAccess
from integrations.models import WebhookEvent
from otto import services
from otto.models import AuditAction, AuditEvent, Company, Membership, Role
from tests.api.factories import CallFactory, company_admin_form
from tests.appointments.conftest import analysed_call
from tests.calls_api.conftest import store_recording
from tests.integrations.fixtures import CLERK_SECRET, load, post_clerk, run_pushed_tasks
from tests.pipeline.conftest import recorded_call

Stage = Call.Stage
ORG = "org_2aAcmeHeating0000000000"


def only(action: AuditAction) -> AuditEvent:
    """The one event of ``action``; fails on none or several."""
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, f"{len(events)} {action} events: {events}"
    return events[0]


# --- recording plays ---------------------------------------------------------------------


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_a_recording_play_is_audited_with_the_client_behind_the_proxy(acme_csr, local_media):
    call = store_recording(CallFactory(company=acme_csr.company))

    response = acme_csr.client().get(
        f"/api/v1/calls/{call.pk}/recording/",
        REMOTE_ADDR="10.0.0.7",
        HTTP_X_FORWARDED_FOR="203.0.113.50",
        HTTP_USER_AGENT="OttoWeb/1.0",
    )

    assert response.status_code == 302
    played = only(AuditAction.RECORDING_PLAYED)
    assert (played.company, played.actor, played.target_type, played.target_id) == (
        acme_csr.company,
        acme_csr.user,
        "call",
        str(call.pk),
    )
    assert (played.ip_address, played.user_agent) == ("203.0.113.50", "OttoWeb/1.0")
    # The call's own history of plays is kept, with the same address.
    assert RecordingAccess.objects.get(call=call).ip_address == "203.0.113.50"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(acme_csr, local_media):
    call = store_recording(CallFactory(company=acme_csr.company))

    acme_csr.client().get(
        f"/api/v1/calls/{call.pk}/recording/",
        REMOTE_ADDR="198.51.100.66",
        HTTP_X_FORWARDED_FOR="10.0.0.1",
    )

    assert only(AuditAction.RECORDING_PLAYED).ip_address == "198.51.100.66"
    assert RecordingAccess.objects.get(call=call).ip_address == "198.51.100.66"


def test_a_play_from_the_admin_is_audited_with_the_staff_user(
    admin_client, admin_user, acme, local_media
):
    call = store_recording(CallFactory(company=acme))

    assert admin_client.get(f"/admin/calls/call/{call.pk}/recording/").status_code == 302

    played = only(AuditAction.RECORDING_PLAYED)
    assert (played.company, played.actor) == (acme, admin_user)


def test_a_call_without_recording_audits_nothing(acme_csr):
    call = CallFactory(company=acme_csr.company)

    assert acme_csr.client().get(f"/api/v1/calls/{call.pk}/recording/").status_code == 404
    assert not AuditEvent.objects.exists()


# --- memberships ---------------------------------------------------------------------------


def test_a_token_creating_and_then_changing_a_membership_is_audited(acme):
    import datetime

    from django.utils import timezone

    created = services.join_company(
        acme, clerk_user_id="user_new", role=Role.CSR, issued_at=timezone.now()
    )
    services.join_company(
        acme,
        clerk_user_id="user_new",
        role=Role.MANAGER,
        issued_at=timezone.now() + datetime.timedelta(seconds=5),
    )

    made = only(AuditAction.MEMBERSHIP_CREATED)
    changed = only(AuditAction.MEMBERSHIP_ROLE_CHANGED)
    assert (made.company, made.target_id, made.actor_label) == (
        acme,
        str(created.pk),
        "clerk token",
    )
    assert made.details == {"user": created.user_id, "source": "token", "role": "csr"}
    assert changed.details["from"] == "csr" and changed.details["to"] == "manager"
    # Every later request with the same claims changes nothing and audits nothing.
    services.join_company(
        acme,
        clerk_user_id="user_new",
        role=Role.MANAGER,
        issued_at=timezone.now() + datetime.timedelta(seconds=10),
    )
    assert AuditEvent.objects.count() == 2


@pytest.fixture
def deliver(client, settings, django_capture_on_commit_callbacks):
    settings.CLERK_WEBHOOK_SECRET = CLERK_SECRET

    def deliver(name: str) -> None:
        with django_capture_on_commit_callbacks() as callbacks:
            assert post_clerk(client, load("clerk", name)).status_code == 200
        while callbacks:
            with django_capture_on_commit_callbacks() as more:
                run_pushed_tasks(callbacks)
            callbacks = more

    return deliver


def test_clerk_membership_events_are_audited(db, deliver):
    deliver("organization.created")
    deliver("organizationMembership.created")
    deliver("organizationMembership.updated")
    deliver("user.deleted")

    company = Company.objects.get(clerk_org_id=ORG)
    membership = Membership.objects.get(company=company)
    created = only(AuditAction.MEMBERSHIP_CREATED)
    changed = only(AuditAction.MEMBERSHIP_ROLE_CHANGED)
    revoked = only(AuditAction.MEMBERSHIP_REVOKED)
    for event in (created, changed, revoked):
        assert (event.company, event.target_id, event.actor) == (company, str(membership.pk), None)
        assert event.details["source"] == "webhook"
    assert created.actor_label == "clerk webhook"
    assert (changed.details["from"], changed.details["to"]) == ("manager", "csr")


def test_a_membership_revoked_then_granted_again_is_restored(acme):
    def from_clerk(**extra):
        return services.record_membership(
            acme, clerk_user_id="user_back", clerk_membership_id="orgmem_back", **extra
        )

    from_clerk(role=Role.CSR)
    from_clerk(role=Role.CSR, deleted=True)
    membership = from_clerk(role=Role.CSR)

    actions = list(
        AuditEvent.objects.filter(target_id=str(membership.pk))
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["membership.created", "membership.revoked", "membership.restored"]


def test_clerk_renaming_and_deleting_the_organization_is_audited(db, deliver):
    deliver("organization.created")
    deliver("organization.updated")
    deliver("organization.deleted")

    fields = [
        event.details["fields"]
        for event in AuditEvent.objects.filter(
            action=AuditAction.COMPANY_SETTINGS_CHANGED
        ).order_by("pk")
    ]
    assert fields == [["name"], ["is_active"]]


def test_a_role_change_in_the_admin_is_audited_with_the_staff_user(
    admin_client, admin_user, acme_csr
):
    membership = acme_csr.membership
    url = f"/admin/otto/membership/{membership.pk}/change/"

    response = admin_client.post(
        url,
        {
            "user": membership.user_id,
            "company": membership.company_id,
            "role": "manager",
            "clerk_membership_id": "",
            "revoked_at_0": "",
            "revoked_at_1": "",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    changed = only(AuditAction.MEMBERSHIP_ROLE_CHANGED)
    assert (changed.actor, changed.details["from"], changed.details["to"]) == (
        admin_user,
        "csr",
        "manager",
    )
    assert changed.details["source"] == "admin"


def test_deleting_a_membership_in_the_admin_is_audited(admin_client, admin_user, acme_csr):
    membership = acme_csr.membership

    response = admin_client.post(f"/admin/otto/membership/{membership.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    deleted = only(AuditAction.MEMBERSHIP_DELETED)
    assert (deleted.actor, deleted.target_id, deleted.details["role"]) == (
        admin_user,
        str(membership.pk),
        "csr",
    )


# --- company settings and secrets ----------------------------------------------------------


def test_a_settings_patch_audits_field_names_and_never_a_secret(acme_manager):
    secret = "whsec-SIGNING-KEY-do-not-log"

    response = acme_manager.client().patch(
        "/api/v1/company/",
        {"timezone": "America/Denver", "callrail_signing_key": secret, "name": "Acme Heating"},
        format="json",
    )

    assert response.status_code == 200, response.content
    settings_event = only(AuditAction.COMPANY_SETTINGS_CHANGED)
    secret_event = only(AuditAction.COMPANY_SECRET_CHANGED)
    # "name" did not change: only what differs is named.
    assert settings_event.details == {"fields": ["timezone"]}
    assert secret_event.details == {"set": ["callrail_signing_key"], "cleared": []}
    for event in (settings_event, secret_event):
        assert event.actor == acme_manager.user and event.target_type == "company"
        assert secret not in json.dumps(event.details)
    assert not AuditEvent.objects.filter(details__icontains=secret).exists()


def test_clearing_a_secret_is_audited_and_an_unchanged_patch_is_not(acme_manager):
    client = acme_manager.client()
    client.patch("/api/v1/company/", {"callrail_signing_key": "k1"}, format="json")

    client.patch("/api/v1/company/", {"callrail_signing_key": None}, format="json")
    client.patch("/api/v1/company/", {"timezone": acme_manager.company.timezone}, format="json")

    secret_events = AuditEvent.objects.filter(action=AuditAction.COMPANY_SECRET_CHANGED)
    assert [event.details for event in secret_events.order_by("pk")] == [
        {"set": ["callrail_signing_key"], "cleared": []},
        {"set": [], "cleared": ["callrail_signing_key"]},
    ]
    assert not AuditEvent.objects.filter(action=AuditAction.COMPANY_SETTINGS_CHANGED).exists()


def test_a_rejected_settings_change_leaves_no_event(acme_manager, globex):
    services.update_company(globex, tracking_numbers=["+13035550177"])
    before = AuditEvent.objects.count()

    response = acme_manager.client().patch(
        "/api/v1/company/",
        {"tracking_numbers": ["+13035550177"], "timezone": "America/Denver"},
        format="json",
    )

    assert response.status_code == 409
    assert AuditEvent.objects.count() == before


def test_a_settings_change_in_the_admin_is_audited_with_the_staff_user(
    admin_client, admin_user, acme
):
    data = company_admin_form(
        admin_client,
        acme,
        timezone="America/Chicago",
        new_callrail_api_key="cr-admin-TOPSECRET",
    )

    response = admin_client.post(f"/admin/otto/company/{acme.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    changed = only(AuditAction.COMPANY_SETTINGS_CHANGED)
    secret = only(AuditAction.COMPANY_SECRET_CHANGED)
    assert changed.details == {"fields": ["timezone"]} and changed.actor == admin_user
    assert secret.details == {"set": ["callrail_api_key"], "cleared": []}
    assert secret.actor == admin_user
    assert "TOPSECRET" not in json.dumps([changed.details, secret.details])


# --- ops: retries, re-analysis, re-applied outcomes, replays --------------------------------


def test_a_retry_through_the_api_is_audited(acme_manager, sandbox, worker):
    call = recorded_call(acme_manager.company, "booked")
    stages.move(Call.objects.all(), call, Stage.TRANSCRIBING)
    stages.move(Call.objects.all(), call, Stage.FAILED, reason="HTTP 400", attempts=1)

    response = acme_manager.client().post(f"/api/v1/calls/{call.pk}/retry/", {}, format="json")

    assert response.status_code == 200, response.content
    retried = only(AuditAction.CALL_RETRIED)
    assert (retried.company, retried.actor, retried.target_id, retried.details) == (
        acme_manager.company,
        acme_manager.user,
        str(call.pk),
        {"from_stage": "transcription"},
    )
    assert retried.ip_address == "127.0.0.1"


def test_a_refused_retry_is_not_audited(acme_manager, sandbox):
    call = recorded_call(acme_manager.company, "booked", stage=Stage.TRANSCRIBED)

    response = acme_manager.client().post(f"/api/v1/calls/{call.pk}/retry/", {}, format="json")

    assert response.status_code == 409
    assert not AuditEvent.objects.exists()


def test_a_retry_from_the_admin_is_audited(admin_client, admin_user, acme, sandbox, worker):
    call = recorded_call(acme, "booked")
    stages.move(Call.objects.all(), call, Stage.FAILED, reason="HTTP 400", attempts=1)

    admin_client.post(
        "/admin/calls/call/", {"action": "retry_failed", "_selected_action": [call.pk]}
    )

    retried = only(AuditAction.CALL_RETRIED)
    assert (retried.company, retried.actor) == (acme, admin_user)


@pytest.mark.parametrize(
    ("button", "from_stage"), [("reingest", "ingest"), ("refetch-recording", "recording")]
)
def test_a_re_run_of_ingest_from_the_admin_is_audited(
    admin_client, admin_user, acme, sandbox, worker, button, from_stage
):
    call = recorded_call(acme, "booked", stage=Stage.FAILED)

    response = admin_client.post(f"/admin/calls/call/{call.pk}/{button}/")

    assert response.status_code == 302
    retried = only(AuditAction.CALL_RETRIED)
    assert (retried.actor, retried.target_id, retried.details) == (
        admin_user,
        str(call.pk),
        {"from_stage": from_stage},
    )


def test_a_reanalysis_from_the_admin_is_audited(admin_client, admin_user, acme, sandbox, run_tasks):
    call = analysed_call(acme, "booked")

    with run_tasks():
        response = admin_client.post(f"/admin/calls/call/{call.pk}/reanalyze/")

    assert response.status_code == 302
    reanalysed = only(AuditAction.CALL_REANALYZED)
    assert (reanalysed.company, reanalysed.actor, reanalysed.target_id) == (
        acme,
        admin_user,
        str(call.pk),
    )


def test_re_applied_outcomes_are_audited(admin_client, admin_user, acme, sandbox, run_tasks):
    call = analysed_call(acme, "booked")
    outcomes_pipeline.apply_call(call.pk)

    with run_tasks():
        admin_client.post(
            "/admin/calls/call/", {"action": "reapply_outcomes", "_selected_action": [call.pk]}
        )

    reapplied = only(AuditAction.CALL_OUTCOMES_REAPPLIED)
    assert (reapplied.company, reapplied.actor, reapplied.target_id) == (
        acme,
        admin_user,
        str(call.pk),
    )


def test_a_webhook_replay_is_audited(admin_client, admin_user, settings):
    settings.CLERK_WEBHOOK_SECRET = CLERK_SECRET
    response = post_clerk(Client(), load("clerk", "organization.created"))
    stored = WebhookEvent.objects.get(pk=response.json()["id"])

    response = admin_client.post(
        "/admin/integrations/webhookevent/",
        {"action": "replay_selected", "_selected_action": [stored.pk]},
    )

    assert response.status_code == 302
    replayed = only(AuditAction.WEBHOOK_REPLAYED)
    company = Company.objects.get(clerk_org_id=ORG)
    assert (replayed.company, replayed.actor, replayed.target_type, replayed.target_id) == (
        company,
        admin_user,
        "webhook_event",
        str(stored.pk),
    )
    assert replayed.details == {
        "provider": "clerk",
        "event_type": "organization.created",
        "status": "processed",
    }
