"""The one membership write path (otto.services.record_membership): the rules hold the
same whether a session token or a Clerk membership event reports the change."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from otto import services
from otto.models import Membership, Role, User

USER = "user_2member000000000000000"


def now_plus(seconds: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=seconds)


def from_token(company, role=Role.CSR, issued_at=None, **extra):
    return services.record_membership(
        company,
        clerk_user_id=USER,
        role=role,
        observed_at=issued_at or now_plus(1),
        **extra,
    )


def from_event(company, role=Role.CSR, membership_id="orgmem_1", **extra):
    return services.record_membership(
        company, clerk_user_id=USER, role=role, clerk_membership_id=membership_id, **extra
    )


def test_a_token_and_an_event_write_the_same_membership(db, acme):
    created = from_token(acme, Role.CSR)
    updated = from_event(acme, Role.MANAGER)

    assert created.pk == updated.pk
    membership = Membership.objects.get(user__clerk_user_id=USER)
    assert (membership.role, membership.clerk_membership_id) == (Role.MANAGER, "orgmem_1")


def test_a_token_never_lifts_a_revocation_a_clerk_event_made(db, acme):
    from_event(acme, Role.MANAGER)
    from_event(acme, Role.MANAGER, deleted=True)

    with pytest.raises(services.MembershipRevoked):
        from_token(acme, Role.MANAGER, issued_at=now_plus(60))
    assert Membership.objects.get(user__clerk_user_id=USER).revoked_at is not None


def test_a_newer_clerk_event_lifts_a_revocation(db, acme):
    from_token(acme, Role.CSR)
    Membership.objects.update(revoked_at=timezone.now())

    from_event(acme, Role.SALES_REP)

    membership = Membership.objects.get(user__clerk_user_id=USER)
    assert (membership.revoked_at, membership.role) == (None, Role.SALES_REP)


def test_an_older_token_does_not_undo_a_clerk_change(db, acme):
    from_event(acme, Role.CSR)  # say, a demotion
    from_token(acme, Role.MANAGER, issued_at=now_plus(-30))
    assert Membership.objects.get(user__clerk_user_id=USER).role == Role.CSR

    from_token(acme, Role.MANAGER, issued_at=now_plus(5))
    assert Membership.objects.get(user__clerk_user_id=USER).role == Role.MANAGER


def test_an_event_about_a_replaced_membership_changes_nothing(db, acme):
    from_event(acme, Role.CSR, membership_id="orgmem_new")

    with pytest.raises(services.MembershipReplaced):
        from_event(acme, Role.MANAGER, membership_id="orgmem_old", deleted=True)
    membership = Membership.objects.get(user__clerk_user_id=USER)
    assert (membership.role, membership.revoked_at) == (Role.CSR, None)


def test_an_unmapped_role_revokes_and_an_unknown_one_creates_nothing(db, acme, globex):
    assert from_event(globex, None) is None
    assert not Membership.objects.exists()

    from_event(acme, Role.CSR)
    from_event(acme, None)
    assert Membership.objects.get(company=acme).revoked_at is not None


def test_a_deletion_otto_never_saw_is_remembered_as_revoked(db, acme):
    revoked = from_event(acme, Role.MANAGER, deleted=True)

    assert revoked.revoked_at is not None
    with pytest.raises(services.MembershipRevoked):
        from_token(acme, Role.MANAGER)


def test_another_tenants_membership_is_untouched(db, acme, globex):
    from_token(acme, Role.MANAGER)
    from_event(globex, Role.CSR, membership_id="orgmem_globex", deleted=True)

    mine = Membership.objects.get(company=acme)
    assert (mine.role, mine.revoked_at) == (Role.MANAGER, None)
    assert Membership.objects.get(company=globex).revoked_at is not None


def test_a_placeholder_user_gets_the_email_a_token_carries(db, acme):
    from_event(acme, Role.CSR)  # the membership beat user.created: a placeholder user
    from_token(acme, Role.CSR, email="member@acme.test", name="Mem Ber")

    user = User.objects.get(clerk_user_id=USER)
    assert (user.email, user.name) == ("member@acme.test", "Mem Ber")
    # and a known address is never overwritten
    from_token(acme, Role.CSR, email="other@acme.test")
    user.refresh_from_db()
    assert user.email == "member@acme.test"


def test_a_token_cannot_revoke(db, acme):
    with pytest.raises(ValueError, match="session token"):
        from_token(acme, None)
    assert not Membership.objects.exists()
