"""Clerk session JWTs: the attack matrix and the rules around memberships."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.utils import timezone

from integrations.sandbox.providers import clerk as sandbox_clerk
from otto.models import Company, Membership, User

ME = "/api/v1/me/"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, claims: dict, sign=lambda signing_input: b"") -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def get_me(clerk, token: str):
    return clerk.client(token).get(ME)


def assert_error(response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.content
    if code:
        assert response.json()["error"]["code"] == code


# --- the attack matrix ---------------------------------------------------------------------


def test_v2_claims_are_accepted(clerk, acme_manager):
    response = get_me(clerk, acme_manager.token(version="v2"))

    assert response.status_code == 200
    assert response.json()["role"] == "manager"
    assert response.json()["company"] == {"id": acme_manager.company.pk, "name": "Acme Heating"}


def test_v1_claims_are_accepted(clerk, acme_csr):
    token = acme_csr.token(version="v1")
    assert claims_of(token)["org_role"] == "org:csr" and "o" not in claims_of(token)

    response = get_me(clerk, token)

    assert response.status_code == 200
    assert response.json()["role"] == "csr"


def test_an_expired_token_is_401(clerk, acme_manager):
    past = int(time.time()) - 120
    token = acme_manager.token(claims={"iat": past - 60, "nbf": past - 60, "exp": past})

    response = get_me(clerk, token)

    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_not_valid_yet_is_401(clerk, acme_manager):
    future = int(time.time()) + 120
    token = acme_manager.token(claims={"nbf": future, "exp": future + 60})

    assert_error(get_me(clerk, token), 401)


def test_a_small_clock_skew_is_tolerated(clerk, acme_manager):
    token = acme_manager.token(claims={"nbf": int(time.time()) + 2})

    assert get_me(clerk, token).status_code == 200


def test_a_wrong_issuer_is_401(clerk, acme_manager):
    token = acme_manager.token(claims={"iss": "https://evil.clerk.accounts.dev"})

    assert_error(get_me(clerk, token), 401)


def test_an_authorised_party_is_accepted(clerk, acme_manager, settings):
    settings.ALLOWED_ORIGINS = ["https://app.otto.example"]

    assert get_me(clerk, acme_manager.token(azp="https://app.otto.example")).status_code == 200


def test_an_azp_that_is_not_allowed_is_401(clerk, acme_manager, settings):
    settings.ALLOWED_ORIGINS = ["https://app.otto.example"]
    settings.CLERK_FRONTEND_ORIGIN = "https://clerk.otto.example"

    assert_error(get_me(clerk, acme_manager.token(azp="https://evil.example")), 401)


def test_alg_none_is_401(clerk, acme_manager):
    claims = claims_of(acme_manager.token())
    token = forge({"alg": "none", "typ": "JWT"}, claims)

    assert_error(get_me(clerk, token), 401)


def test_hs256_signed_with_the_public_key_is_401(clerk, acme_manager):
    from cryptography.hazmat.primitives import serialization

    claims = claims_of(acme_manager.token())
    kid, private_key = sandbox_clerk.current_key()
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = forge(
        {"alg": "HS256", "typ": "JWT", "kid": kid},
        claims,
        lambda signing_input: hmac.new(public_pem, signing_input, hashlib.sha256).digest(),
    )

    assert_error(get_me(clerk, token), 401)


def test_an_unknown_kid_is_401(clerk, acme_manager):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    claims = claims_of(acme_manager.token())
    stranger = rsa.generate_private_key(65537, 2048)
    token = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "ins_unknown"})

    assert_error(get_me(clerk, token), 401)


def test_a_token_signed_by_another_key_under_a_known_kid_is_401(clerk, acme_manager):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    kid, _ = sandbox_clerk.current_key()
    claims = claims_of(acme_manager.token())
    token = jwt.encode(claims, rsa.generate_private_key(65537, 2048), "RS256", {"kid": kid})

    assert_error(get_me(clerk, token), 401)


def test_a_tampered_payload_is_401(clerk, acme_manager, globex):
    header, _, signature = acme_manager.token().split(".")
    claims = claims_of(acme_manager.token())
    claims["o"]["id"] = globex.clerk_org_id
    tampered = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"

    assert_error(get_me(clerk, tampered), 401)


def test_garbage_is_401(clerk, db):
    assert_error(get_me(clerk, "not.a.jwt"), 401)


def test_a_pending_session_is_401(clerk, acme_manager):
    assert_error(get_me(clerk, acme_manager.token(claims={"sts": "pending"})), 401)


def test_a_token_without_an_org_is_403(clerk, acme_manager):
    token = clerk.token(sub=acme_manager.user.clerk_user_id)

    assert_error(get_me(clerk, token), 403, "permission_denied")


def test_an_unknown_org_is_403_and_creates_nothing(clerk, db):
    companies, users = Company.objects.count(), User.objects.count()
    token = clerk.token(sub="user_new", org_id="org_nobody_knows", org_role="admin")

    assert_error(get_me(clerk, token), 403)
    assert (Company.objects.count(), User.objects.count()) == (companies, users)


@pytest.mark.parametrize("role", ["member", "org:member", "guest", "", "org:billing"])
def test_an_unmapped_role_is_403(clerk, acme, role):
    token = clerk.token(sub="user_new", org_id=acme.clerk_org_id, org_role=role)

    assert_error(get_me(clerk, token), 403)
    assert not User.objects.filter(clerk_user_id="user_new").exists()


@pytest.mark.parametrize(
    ("clerk_role", "role"),
    [
        ("admin", "manager"),
        ("org:admin", "manager"),
        ("exec", "manager"),
        ("manager", "manager"),
        ("csr", "csr"),
        ("rep", "sales_rep"),
        ("sales_rep", "sales_rep"),
    ],
)
def test_clerk_roles_map_onto_otto_roles(clerk, acme, clerk_role, role):
    token = clerk.token(sub="user_new", org_id=acme.clerk_org_id, org_role=clerk_role)

    assert get_me(clerk, token).json()["role"] == role


def test_jwks_down_with_a_warm_cache_still_accepts(clerk, sandbox, acme_manager):
    # given: the app has fetched the keys once
    assert get_me(clerk, acme_manager.token()).status_code == 200
    token = acme_manager.token()
    # when: the JWKS fails from now on
    sandbox.inject("clerk.jwks", "500", count=100)

    # then
    assert get_me(clerk, token).status_code == 200


def test_jwks_down_with_a_cold_cache_is_503(clerk, sandbox, acme_manager):
    token = acme_manager.token()
    sandbox.inject("clerk.jwks", "500", count=100)

    response = get_me(clerk, token)

    assert_error(response, 503, "auth_unavailable")
    assert sandbox.recorded("clerk.jwks")


def test_a_rotated_key_is_picked_up_within_seconds(clerk, acme_manager):
    assert get_me(clerk, acme_manager.token()).status_code == 200
    clerk.rotate()
    token = acme_manager.token()

    deadline, status = time.monotonic() + 5, None
    while time.monotonic() < deadline:
        status = get_me(clerk, token).status_code
        if status == 200:
            break
        time.sleep(0.25)

    assert status == 200


def test_made_up_kids_do_not_hammer_the_jwks(clerk, sandbox, acme_manager):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    assert get_me(clerk, acme_manager.token()).status_code == 200
    stranger = rsa.generate_private_key(65537, 2048)
    claims = claims_of(acme_manager.token())
    for n in range(10):
        token = jwt.encode(claims, stranger, "RS256", {"kid": f"ins_fake_{n}"})
        assert get_me(clerk, token).status_code == 401

    assert len(sandbox.recorded("clerk.jwks")) <= 2


# --- users and memberships -----------------------------------------------------------------


def test_a_known_org_with_a_new_user_creates_the_user_and_membership(clerk, acme):
    token = clerk.token(
        sub="user_2newcomer", org_id=acme.clerk_org_id, org_role="csr", email="new@acme.test"
    )

    response = get_me(clerk, token)

    assert response.status_code == 200
    user = User.objects.get(clerk_user_id="user_2newcomer")
    assert user.email == "new@acme.test"
    assert Membership.objects.get(user=user, company=acme).role == "csr"
    assert response.json()["user"]["id"] == user.pk


def test_a_revoked_membership_is_403_and_never_recreated(clerk, acme_manager):
    Membership.objects.filter(pk=acme_manager.membership.pk).update(revoked_at=timezone.now())

    assert_error(get_me(clerk, acme_manager.token()), 403)
    membership = Membership.objects.get(pk=acme_manager.membership.pk)
    assert membership.revoked_at is not None
    assert Membership.objects.filter(user=acme_manager.user).count() == 1


def test_an_inactive_company_is_403(clerk, acme_manager):
    Company.objects.filter(pk=acme_manager.company.pk).update(is_active=False)

    assert_error(get_me(clerk, acme_manager.token()), 403)


def test_a_newer_token_updates_a_stale_role_and_an_older_one_does_not(clerk, acme_csr):
    # given: the membership changed after the token was issued (a demotion via webhook)
    old_token = clerk.token(
        sub=acme_csr.user.clerk_user_id,
        org_id=acme_csr.company.clerk_org_id,
        org_role="admin",
        claims={"iat": int(time.time()) - 30},
    )
    assert get_me(clerk, old_token).json()["role"] == "csr"

    # when: a token issued after the last change says admin (a webhook we missed)
    new_token = clerk.token(
        sub=acme_csr.user.clerk_user_id,
        org_id=acme_csr.company.clerk_org_id,
        org_role="admin",
        claims={"iat": int(time.time()) + 1},
    )

    # then
    assert get_me(clerk, new_token).json()["role"] == "manager"


def test_no_credentials_is_401_with_a_bearer_challenge(client, db):
    response = client.get(ME)

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_staff_session_without_a_membership_gets_no_tenant(admin_client):
    assert_error(admin_client.get(ME), 403, "permission_denied")


def test_a_session_user_with_one_membership_works_in_that_tenant(client, acme_manager):
    client.force_login(acme_manager.user)

    response = client.get(ME)

    assert response.status_code == 200
    assert response.json()["company"]["id"] == acme_manager.company.pk


def test_jwks_down_after_the_cache_went_stale_still_accepts_known_keys(
    clerk, sandbox, acme_manager, monkeypatch
):
    from integrations.clerk import client as clerk_client

    assert get_me(clerk, acme_manager.token()).status_code == 200
    token = acme_manager.token()
    monkeypatch.setattr(clerk_client, "REFRESH_SECONDS", 0.0)  # every use wants a refetch
    monkeypatch.setattr(clerk_client, "COOLDOWN_SECONDS", 0.0)
    sandbox.inject("clerk.jwks", "500", count=100)

    assert get_me(clerk, token).status_code == 200
    assert get_me(clerk, token).status_code == 200
    # one good fetch, one failed refetch, then the failure backoff holds further attempts
    assert len(sandbox.recorded("clerk.jwks")) == 2
