"""Who is calling: Clerk session JWTs for the API, Django sessions for staff in the browser.

A request that authenticates carries ``request.auth``, the caller's :class:`Membership`
(or None for a session user without one), and :func:`bind_tenant` sets
``request.company``, ``request.membership`` and ``request.role`` for the views.

Status codes, so a client knows what to do next:
- 401: the token itself is bad (signature, issuer, time window, authorised party, pending
  session): get a new one;
- 403: the token is fine but grants nothing here (no org, an org Otto does not know, an
  unmapped or revoked role, an inactive company);
- 503: Clerk's JWKS cannot be fetched and no cached key matches: try again later.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any

import jwt
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.request import Request

from integrations.clerk.client import JwksUnavailable, UnknownSigningKey, jwks_client
from otto import selectors, services
from otto.models import Company, Membership, Role, User

logger = logging.getLogger(__name__)

LEEWAY_SECONDS = 5
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "sub", "sid"]

# Clerk org roles (without the "org:" prefix) and the Otto role each one grants. A role
# missing here is refused: a new Clerk role must not grant access by accident.
CLERK_ROLES: dict[str, Role] = {
    "admin": Role.MANAGER,
    "exec": Role.MANAGER,
    "manager": Role.MANAGER,
    "csr": Role.CSR,
    "rep": Role.SALES_REP,
    "sales_rep": Role.SALES_REP,
}


class AuthUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Sign-in cannot be checked right now; try again shortly."
    default_code = "auth_unavailable"


def authorized_parties() -> set[str]:
    parties = [settings.CLERK_FRONTEND_ORIGIN, *settings.ALLOWED_ORIGINS]
    # A wildcard in ALLOWED_ORIGINS opens CORS in development; it never authorises a party.
    return {party.rstrip("/") for party in parties if party and party != "*"}


def map_role(clerk_role: str | None) -> Role | None:
    return CLERK_ROLES.get((clerk_role or "").removeprefix("org:"))


def org_claims(claims: dict[str, Any]) -> tuple[str | None, str | None]:
    """The active org's id and role: v2 ``o.id``/``o.rol``, else v1 ``org_id``/``org_role``."""
    org = claims.get("o")
    if isinstance(org, dict) and org.get("id"):
        return str(org["id"]), str(org.get("rol") or "")
    if claims.get("org_id"):
        return str(claims["org_id"]), str(claims.get("org_role") or "")
    return None, None


def verify_session_token(token: str) -> dict[str, Any]:
    """The verified claims of a Clerk session token, or an API exception."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise exceptions.AuthenticationFailed("The token is malformed.") from None
    # Checked before any key lookup: "none" and HS256 (signed with the public key) die here.
    if header.get("alg") != "RS256" or not header.get("kid"):
        raise exceptions.AuthenticationFailed("The token must be RS256 with a key id.")
    if not settings.CLERK_ISSUER:
        raise AuthUnavailable("CLERK_ISSUER is not configured.")
    try:
        key = jwks_client().signing_key(str(header["kid"]))
    except UnknownSigningKey:
        raise exceptions.AuthenticationFailed("The token's signing key is unknown.") from None
    except JwksUnavailable as exc:
        logger.warning("clerk JWKS unavailable: %s", exc.detail)
        raise AuthUnavailable() from None
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            issuer=settings.CLERK_ISSUER,
            leeway=LEEWAY_SECONDS,
            # Clerk session tokens carry no audience; azp is checked below instead.
            options={"require": REQUIRED_CLAIMS, "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise exceptions.AuthenticationFailed("The token has expired.") from None
    except jwt.ImmatureSignatureError:
        raise exceptions.AuthenticationFailed("The token is not valid yet.") from None
    except jwt.InvalidIssuerError:
        raise exceptions.AuthenticationFailed("The token was issued by someone else.") from None
    except jwt.InvalidTokenError:
        raise exceptions.AuthenticationFailed("The token is invalid.") from None
    azp = claims.get("azp")
    if azp and str(azp).rstrip("/") not in authorized_parties():
        raise exceptions.AuthenticationFailed("The token was issued for another origin.")
    if claims.get("sts") == "pending":
        raise exceptions.AuthenticationFailed("The session is pending; finish signing in.")
    return claims


def membership_for_claims(claims: dict[str, Any]) -> Membership:
    org_id, clerk_role = org_claims(claims)
    if not org_id:
        raise exceptions.PermissionDenied("Select an organisation in Clerk first.")
    company = selectors.company_for_org(org_id)
    if company is None:
        # Never created from a token: tenants come from Clerk webhooks or ops.
        raise exceptions.PermissionDenied("This organisation does not use Otto.")
    if not company.is_active:
        raise exceptions.PermissionDenied("This organisation's Otto account is inactive.")
    role = map_role(clerk_role)
    if role is None:
        raise exceptions.PermissionDenied("Your role in this organisation has no Otto access.")
    try:
        membership = services.join_company(
            company,
            clerk_user_id=str(claims["sub"]),
            role=role,
            email=str(claims.get("email") or ""),
            name=str(claims.get("name") or ""),
            issued_at=datetime.datetime.fromtimestamp(int(claims["iat"]), tz=datetime.UTC),
        )
    except services.MembershipRevoked:
        raise exceptions.PermissionDenied("Your access to this organisation was removed.") from None
    if not membership.user.is_active:
        raise exceptions.AuthenticationFailed("This user is deactivated.")
    return membership


class TenantRequest(Request):
    """A DRF request that passed :class:`otto.permissions.IsTenantMember`.

    For type checking only: DRF builds plain ``Request`` objects and :func:`bind_tenant`
    adds these attributes, so code that runs behind that permission casts to this type.
    """

    company: Company
    membership: Membership
    role: Role

    if TYPE_CHECKING:
        # Authentication succeeded, so the user is never AnonymousUser.
        @property
        def user(self) -> User: ...
        @user.setter
        def user(self, value: User) -> None: ...


def bind_tenant(request: Request, membership: Membership | None) -> None:
    """Expose the tenant on the DRF request and on the Django request under it."""
    tenant = {
        "company": membership.company if membership is not None else None,
        "membership": membership,
        "role": Role(membership.role) if membership is not None else None,
    }
    # Neither request class declares these attributes (see TenantRequest), hence setattr.
    for target in (request, request._request):
        for name, value in tenant.items():
            setattr(target, name, value)


class ClerkJWTAuthentication(BaseAuthentication):
    """``Authorization: Bearer <Clerk session JWT>``."""

    def authenticate(self, request: Request) -> tuple[User, Membership] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send exactly one bearer token.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token is malformed.") from None
        membership = membership_for_claims(verify_session_token(token))
        bind_tenant(request, membership)
        return membership.user, membership

    def authenticate_header(self, request: Request) -> str:
        # With a challenge, DRF answers both a bad token and no credentials with 401, which
        # is what tells a frontend to sign in again (403 means "signed in, not allowed").
        return 'Bearer realm="api"'


class TenantSessionAuthentication(SessionAuthentication):
    """The Django session (staff in the browsable API).

    Being staff grants no tenant: the session user works in a tenant only through one
    active membership of their own, exactly like a token user. Staff see every tenant in
    the admin, never through the API.
    """

    def authenticate(self, request: Request) -> tuple[User, Membership | None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        membership = selectors.session_membership(user)
        bind_tenant(request, membership)
        return user, membership


# The ignore: drf-spectacular leaves the extension's __init_subclass__ unannotated.
class ClerkJWTScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = ClerkJWTAuthentication
    name = "clerkJWT"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A Clerk session token (docs/auth.md).",
        }


# The ignore: drf-spectacular leaves the extension's __init_subclass__ unannotated.
class TenantSessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = TenantSessionAuthentication
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
