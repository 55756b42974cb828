"""POST /webhooks/clerk: svix-verified, stored, then synced into Company, User, Membership."""

from __future__ import annotations

import copy
import datetime

import pytest

from integrations.models import WebhookEvent
from otto.models import Company, Membership, Role, User
from tests.integrations.fixtures import (
    CLERK_SECRET,
    OTHER_CLERK_SECRET,
    load,
    post_clerk,
    run_pushed_tasks,
)

Status = WebhookEvent.Status
ORG = "org_2aAcmeHeating0000000000"
USER = "user_2aDanaLee00000000000000"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.CLERK_WEBHOOK_SECRET = CLERK_SECRET


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """POST a signed event, then work off everything it enqueued (and what that enqueued)."""

    def deliver(payload, **signing) -> WebhookEvent:
        with django_capture_on_commit_callbacks() as callbacks:
            response = post_clerk(client, payload, **signing)
        assert response.status_code == 200, response.content
        while callbacks:
            with django_capture_on_commit_callbacks() as more:
                run_pushed_tasks(callbacks)
            callbacks = more
        return WebhookEvent.objects.get(pk=response.json()["id"])

    return deliver


def event(fixture: str, **data) -> dict:
    payload = copy.deepcopy(load("clerk", fixture))
    payload["data"].update(data)
    return payload


# --- organizations -------------------------------------------------------------------------


def test_organization_created_creates_the_tenant(db, deliver):
    stored = deliver(event("organization.created"))

    company = Company.objects.get(clerk_org_id=ORG)
    assert (company.name, company.slug, company.is_active) == (
        "Acme Heating & Air",
        "acme-heating",
        True,
    )
    assert stored.status == Status.PROCESSED and stored.processed_at is not None
    assert stored.company == company
    assert stored.headers["svix-id"].startswith("msg_") and "svix-signature" in stored.headers


def test_organization_created_with_a_taken_slug_gets_a_free_one(db, deliver):
    Company.objects.create(name="Another Acme", slug="acme-heating", clerk_org_id="org_other")

    deliver(event("organization.created"))

    assert Company.objects.get(clerk_org_id=ORG).slug == "acme-heating-2"


def test_organization_updated_renames_and_keeps_the_slug(db, deliver):
    deliver(event("organization.created"))

    deliver(event("organization.updated"))

    company = Company.objects.get(clerk_org_id=ORG)
    assert company.name == "Acme Heating, Air & Plumbing"
    assert company.slug == "acme-heating"  # URLs and commands keep working after a rename


def test_organization_deleted_deactivates_and_keeps_data(db, deliver):
    deliver(event("organization.created"))
    deliver(event("organizationMembership.created"))

    stored = deliver(event("organization.deleted"))

    company = Company.objects.get(clerk_org_id=ORG)
    assert company.is_active is False
    assert Membership.objects.filter(company=company).count() == 1
    assert stored.status == Status.PROCESSED and stored.company == company


def test_an_older_organization_update_never_undoes_a_newer_one(db, deliver):
    deliver(event("organization.created"))
    deliver(event("organization.updated"))

    stale = deliver(event("organization.updated", name="Acme (old name)", updated_at=1764338100000))

    assert Company.objects.get(clerk_org_id=ORG).name == "Acme Heating, Air & Plumbing"
    assert stale.status == Status.IGNORED and "superseded" in stale.last_error


# --- users ---------------------------------------------------------------------------------


def test_user_created_creates_the_user_with_the_primary_email(db, deliver):
    stored = deliver(event("user.created"))

    user = User.objects.get(clerk_user_id=USER)
    assert (user.email, user.name, user.is_active) == (
        "dana.lee@acmeheating.example.com",
        "Dana Lee",
        True,
    )
    assert stored.status == Status.PROCESSED and stored.company is None


def test_user_updated_changes_name_and_email(db, deliver):
    deliver(event("user.created"))

    deliver(event("user.updated"))

    user = User.objects.get(clerk_user_id=USER)
    assert (user.email, user.name) == ("old.address@example.org", "Dana Lee-Park")


def test_user_deleted_deactivates_the_user_and_revokes_memberships(db, deliver):
    deliver(event("organization.created"))
    deliver(event("user.created"))
    deliver(event("organizationMembership.created"))

    deliver(event("user.deleted"))

    user = User.objects.get(clerk_user_id=USER)
    assert user.is_active is False
    assert Membership.objects.get(user=user).revoked_at is not None


# --- memberships ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clerk_role", "role"),
    [
        ("org:admin", Role.MANAGER),
        ("admin", Role.MANAGER),
        ("exec", Role.MANAGER),
        ("org:manager", Role.MANAGER),
        ("org:csr", Role.CSR),
        ("rep", Role.SALES_REP),
        ("org:sales_rep", Role.SALES_REP),
    ],
)
def test_membership_created_grants_the_mapped_role(db, deliver, clerk_role, role):
    deliver(event("organization.created"))

    stored = deliver(event("organizationMembership.created", role=clerk_role))

    membership = Membership.objects.get(user__clerk_user_id=USER, company__clerk_org_id=ORG)
    assert (membership.role, membership.revoked_at) == (role, None)
    assert membership.clerk_membership_id == "orgmem_2aDanaAtAcme00000000"
    assert stored.company == membership.company


def test_an_unmapped_role_grants_nothing(db, deliver):
    deliver(event("organization.created"))

    stored = deliver(event("organizationMembership.created", role="org:member"))

    assert not Membership.objects.filter(user__clerk_user_id=USER).exists()
    assert stored.status == Status.PROCESSED and "no Otto access" in stored.last_error


def test_a_role_changed_to_an_unmapped_one_revokes_access(db, deliver):
    deliver(event("organization.created"))
    deliver(event("organizationMembership.created"))

    deliver(event("organizationMembership.updated", role="org:member"))

    assert Membership.objects.get(user__clerk_user_id=USER).revoked_at is not None


def test_membership_updated_changes_the_role(db, deliver):
    deliver(event("organization.created"))
    deliver(event("organizationMembership.created"))

    deliver(event("organizationMembership.updated"))

    assert Membership.objects.get(user__clerk_user_id=USER).role == Role.CSR


def test_membership_deleted_revokes_access_at_once(db, deliver):
    deliver(event("organization.created"))
    deliver(event("organizationMembership.created"))

    stored = deliver(event("organizationMembership.deleted"))

    membership = Membership.objects.get(user__clerk_user_id=USER)
    assert membership.revoked_at is not None
    assert stored.status == Status.PROCESSED


def test_a_revoked_member_is_refused_by_the_api(db, deliver, acme_manager, settings):
    settings.CLERK_WEBHOOK_SECRET = CLERK_SECRET  # the sandbox fixture sets its own
    # given a manager who can use the API
    assert acme_manager.client().get("/api/v1/me/").status_code == 200
    membership_deleted = event(
        "organizationMembership.deleted",
        id="orgmem_acme_manager",
        organization={"id": acme_manager.company.clerk_org_id, "name": "Acme Heating"},
        public_user_data={"user_id": acme_manager.user.clerk_user_id, "identifier": "m@x.com"},
    )
    # when Clerk says the membership is gone
    deliver(membership_deleted)
    # then a token that still claims it is refused
    assert acme_manager.client().get("/api/v1/me/").status_code == 403


def test_a_new_membership_event_restores_a_revoked_member(db, deliver):
    deliver(event("organization.created"))
    deliver(event("organizationMembership.created"))
    deliver(event("organizationMembership.deleted"))

    later = event("organizationMembership.updated", updated_at=1764339300000)
    later["timestamp"] = 1764339300100
    deliver(later)

    membership = Membership.objects.get(user__clerk_user_id=USER)
    assert (membership.revoked_at, membership.role) == (None, Role.CSR)


# --- out of order --------------------------------------------------------------------------


def test_a_membership_before_its_user_converges(db, deliver):
    deliver(event("organization.created"))

    deliver(event("organizationMembership.created"))
    placeholder = User.objects.get(clerk_user_id=USER)
    assert (placeholder.email, placeholder.name) == ("dana.lee@acmeheating.example.com", "Dana Lee")

    deliver(event("user.updated"))

    user = User.objects.get(clerk_user_id=USER)
    assert user.pk == placeholder.pk
    assert (user.email, user.name) == ("old.address@example.org", "Dana Lee-Park")
    assert Membership.objects.get(user=user).role == Role.MANAGER


def test_a_membership_before_its_organization_waits_for_it_and_converges(db, deliver):
    early = deliver(event("organizationMembership.created"))
    assert early.status == Status.UNMATCHED and ORG in early.last_error
    assert not Company.objects.exists()  # a membership never creates a tenant

    deliver(event("organization.created"))

    early.refresh_from_db()
    membership = Membership.objects.get(user__clerk_user_id=USER)
    assert membership.company.clerk_org_id == ORG and membership.role == Role.MANAGER
    assert early.status == Status.PROCESSED and early.company == membership.company


def test_a_delete_that_overtakes_its_create_stays_revoked(db, deliver):
    deliver(event("organization.created"))

    deliver(event("organizationMembership.deleted"))
    late_create = deliver(event("organizationMembership.created"))

    assert Membership.objects.get(user__clerk_user_id=USER).revoked_at is not None
    assert late_create.status == Status.IGNORED


def test_a_user_update_after_the_delete_does_not_revive_the_user(db, deliver):
    deliver(event("user.deleted"))

    late = deliver(event("user.updated"))

    user = User.objects.get(clerk_user_id=USER)
    assert (user.is_active, user.name) == (False, "")
    assert late.status == Status.IGNORED


# --- the delivery itself -------------------------------------------------------------------


def test_a_bad_signature_is_refused_and_nothing_is_stored(db, client):
    response = post_clerk(client, event("organization.created"), secrets=(OTHER_CLERK_SECRET,))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
    assert not Company.objects.exists()


def test_a_malformed_signature_is_refused_not_a_server_error(db, client):
    body = '{"type": "user.created", "data": {}}'
    response = client.post(
        "/webhooks/clerk",
        data=body,
        content_type="application/json",
        HTTP_SVIX_ID="msg_1",
        HTTP_SVIX_TIMESTAMP=str(int(datetime.datetime.now(datetime.UTC).timestamp())),
        HTTP_SVIX_SIGNATURE="v1,not*base64!",
    )

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("minutes", [-10, 10])
def test_a_timestamp_outside_five_minutes_is_refused(db, client, minutes):
    sent_at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)

    response = post_clerk(client, event("organization.created"), sent_at=sent_at)

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_several_signatures_pass_when_one_matches(db, deliver):
    stored = deliver(event("organization.created"), secrets=(OTHER_CLERK_SECRET, CLERK_SECRET))

    assert stored.status == Status.PROCESSED
    assert Company.objects.filter(clerk_org_id=ORG).exists()


def test_a_duplicate_svix_id_is_acknowledged_and_processed_once(db, client, deliver):
    first = deliver(event("organization.created"), msg_id="msg_same")

    again = post_clerk(client, event("organization.created"), msg_id="msg_same")

    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "id": first.pk}
    first.refresh_from_db()
    assert (first.status, first.attempts) == (Status.PROCESSED, 1)
    assert WebhookEvent.objects.count() == 1


def test_an_unknown_event_type_is_stored_as_ignored(db, deliver):
    stored = deliver({"type": "session.created", "object": "event", "data": {"id": "sess_1"}})

    assert stored.status == Status.IGNORED
    assert "session.created" in stored.last_error


def test_a_signed_body_that_is_not_an_event_is_stored_as_failed(db, deliver):
    stored = deliver('{"hello": "world"}')

    assert stored.status == Status.FAILED
    assert "not a Clerk event envelope" in stored.last_error
    assert stored.dedupe_key.startswith("sha256:")
    assert stored.body == '{"hello": "world"}'


def test_a_valid_event_whose_data_cannot_be_used_fails_with_the_reason(db, deliver):
    stored = deliver({"type": "user.created", "object": "event", "data": {"first_name": "X"}})

    assert stored.status == Status.FAILED
    assert "id" in stored.last_error and "ValidationError" in stored.last_error
