"""Clerk webhooks (svix-signed): keep Company, User and Membership in step with Clerk.

``POST /webhooks/clerk`` goes through the inbox (:mod:`integrations.inbox`), which the core
registers this source with (:mod:`otto.apps`); the dedupe key
is ``svix-id``. Handlers run in the inbox's processing task and must be safe to run twice.

Ordering. Svix retries and replays arrive out of order, so every handler first takes the
per-object version lock (:class:`ClerkObjectVersion`) and skips an event older than the
state already applied (status ``ignored``, with the reason). The version is Clerk's
``data.updated_at``, or for deletions the envelope ``timestamp`` (emitted after any
update of the object it deletes).

Membership before its user: a placeholder User is made from ``public_user_data`` and the
later ``user.created`` fills it in. Membership before its organization: the event is kept
``unmatched`` (nothing is created: only ``organization.created`` may create a Company,
because only it proves the org exists and is meant to be one); when that organization
arrives, its deferred membership events are re-queued automatically, and an admin replay
does the same by hand.
"""

from __future__ import annotations

import datetime
import hmac
from collections.abc import Iterator, Mapping

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from pydantic import ValidationError
from svix.webhooks import Webhook, WebhookVerificationError

from integrations import services as inbox_services
from integrations.clerk.schemas import (
    DeletedData,
    Envelope,
    MembershipData,
    OrganizationData,
    UserData,
)
from integrations.inbox import (
    Handler,
    HandlerResult,
    Incoming,
    SignatureInvalid,
    Source,
    unparseable,
)
from integrations.models import ClerkObjectVersion, Provider, WebhookEvent
from otto import services
from otto.auth import map_role
from otto.models import AuditAction, Company, Membership, User

Status = WebhookEvent.Status

# Who changed a company or membership, in the audit log, when a Clerk event did.
CLERK_ACTOR = "clerk webhook"

HEADERS = ("svix-id", "svix-timestamp", "svix-signature", "content-type", "user-agent")


# --- receive -----------------------------------------------------------------------------


def check_delivery(
    body: bytes, headers: Mapping[str, str], route_event_type: str = "", *, replay: bool
) -> Incoming:
    secret = settings.CLERK_WEBHOOK_SECRET
    if not secret:
        raise SignatureInvalid("CLERK_WEBHOOK_SECRET is not set; Clerk events cannot be verified")
    try:
        webhook = Webhook(secret)
        if replay:
            _check_signature_only(webhook, body, headers)
        else:
            webhook.verify(body, dict(headers))
    # Malformed base64 in svix-signature raises binascii.Error, a ValueError.
    except (WebhookVerificationError, ValueError) as exc:
        raise SignatureInvalid(f"svix signature check failed: {exc}") from None
    try:
        envelope = Envelope.model_validate_json(body)
    except ValidationError as exc:
        return unparseable("", body, f"not a Clerk event envelope: {_first_error(exc)}")
    return Incoming(event_type=envelope.type, dedupe_key=headers["svix-id"])


def _check_signature_only(webhook: Webhook, body: bytes, headers: Mapping[str, str]) -> None:
    """svix's check minus the ±5 min window, which a stored delivery can never pass."""
    try:
        sent_at = datetime.datetime.fromtimestamp(int(headers["svix-timestamp"]), tz=datetime.UTC)
        expected = webhook.sign(headers["svix-id"], sent_at, body.decode()).partition(",")[2]
    except (KeyError, ValueError, OverflowError):
        raise SignatureInvalid("the stored svix headers are missing or malformed") from None
    for entry in headers.get("svix-signature", "").split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return
    raise SignatureInvalid("no svix signature matches the stored body")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"


# --- versions ----------------------------------------------------------------------------


def _version(envelope: Envelope, updated_at: int | None, *, deleted: bool = False) -> int | None:
    if deleted:
        return max(filter(None, (envelope.timestamp, updated_at)), default=None)
    return updated_at or envelope.timestamp


def claim_version(clerk_id: str, version: int | None) -> bool:
    """Lock ``clerk_id``'s version row; False when ``version`` is older than what is applied.

    Runs inside the processing transaction, so concurrent events about one object apply
    one after the other. An event without a timestamp is applied and does not move the mark.
    """
    if version is None:
        return True
    mark, created = ClerkObjectVersion.objects.select_for_update().get_or_create(
        clerk_id=clerk_id, defaults={"version": version}
    )
    if created:
        return True
    if version < mark.version:
        return False
    if version > mark.version:
        mark.version = version
        mark.save(update_fields=["version", "updated_at"])
    return True


def _superseded(clerk_id: str, company: Company | None = None) -> HandlerResult:
    return HandlerResult(
        status=Status.IGNORED,
        company=company,
        note=f"superseded: a newer event for {clerk_id} was already applied",
    )


def _envelope(event: WebhookEvent) -> Envelope:
    return Envelope.model_validate_json(event.body)


# --- users -------------------------------------------------------------------------------


def _user(clerk_user_id: str, **defaults: object) -> tuple[User, bool]:
    return User.objects.get_or_create(
        clerk_user_id=clerk_user_id, defaults={"username": clerk_user_id[:150], **defaults}
    )


def sync_user(event: WebhookEvent) -> HandlerResult | None:
    envelope = _envelope(event)
    data = UserData.model_validate(envelope.data)
    if not claim_version(data.id, _version(envelope, data.updated_at)):
        return _superseded(data.id)
    user, created = _user(data.id, email=data.email, name=data.name)
    if not created and (user.email, user.name) != (data.email, data.name):
        user.email, user.name = data.email, data.name
        user.save(update_fields=["email", "name"])
    return None


def delete_user(event: WebhookEvent) -> HandlerResult | None:
    """Deactivate the user and revoke every membership; the rows stay for history."""
    envelope = _envelope(event)
    data = DeletedData.model_validate(envelope.data)
    if not claim_version(data.id, _version(envelope, None, deleted=True)):
        return _superseded(data.id)
    # Created inactive when unknown, so a late membership event cannot grant access.
    user, _ = _user(data.id, is_active=False)
    User.objects.filter(pk=user.pk).update(is_active=False)
    live = Membership.objects.filter(user=user, revoked_at__isnull=True).select_related("company")
    for membership in live:
        services.audit_membership(
            AuditAction.MEMBERSHIP_REVOKED, membership, "webhook", role=membership.role
        )
    live.update(revoked_at=timezone.now())
    return None


# --- organizations -----------------------------------------------------------------------


def _slug_candidates(data: OrganizationData) -> Iterator[str]:
    base = slugify(data.slug or data.name)[:60] or "org"
    yield base
    for number in range(2, 20):
        yield f"{base}-{number}"
    yield f"{base}-{slugify(data.id)[-16:]}"


def _create_company(data: OrganizationData) -> Company:
    for slug in _slug_candidates(data):
        try:
            with transaction.atomic():
                return Company.objects.create(
                    clerk_org_id=data.id, name=data.name or data.id, slug=slug
                )
        except IntegrityError:
            existing = Company.objects.filter(clerk_org_id=data.id).first()
            if existing is not None:  # created concurrently by another delivery
                return existing
    raise IntegrityError(f"no free slug for organization {data.id}")


def sync_organization(event: WebhookEvent) -> HandlerResult | None:
    """Create or rename the tenant. The one place a Company is created from outside: a
    signed Clerk event proves the organization exists. The slug, once set, stays."""
    envelope = _envelope(event)
    data = OrganizationData.model_validate(envelope.data)
    if not claim_version(data.id, _version(envelope, data.updated_at)):
        return _superseded(data.id, Company.objects.filter(clerk_org_id=data.id).first())
    company = Company.objects.filter(clerk_org_id=data.id).first()
    if company is None:
        company = _create_company(data)
    elif data.name and company.name != data.name:
        services.audit_company_changes(company, {"name": data.name}, actor_label=CLERK_ACTOR)
        company.name = data.name
        company.save(update_fields=["name", "updated_at"])
    # Memberships that arrived before their organization converge now.
    deferred = WebhookEvent.objects.filter(
        provider=Provider.CLERK,
        status=Status.UNMATCHED,
        event_type__startswith="organizationMembership.",
        body__contains=f'"{data.id}"',
    )
    inbox_services.requeue(deferred)
    return HandlerResult(company=company)


def delete_organization(event: WebhookEvent) -> HandlerResult | None:
    """Deactivate the tenant (sign-in is refused); its data stays until retention runs."""
    envelope = _envelope(event)
    data = DeletedData.model_validate(envelope.data)
    company = Company.objects.filter(clerk_org_id=data.id).first()
    if not claim_version(data.id, _version(envelope, None, deleted=True)):
        return _superseded(data.id, company)
    if company is None:
        return HandlerResult(note=f"organization {data.id} was never a tenant; nothing to do")
    if company.is_active:
        services.audit_company_changes(company, {"is_active": False}, actor_label=CLERK_ACTOR)
    Company.objects.filter(pk=company.pk).update(is_active=False, updated_at=timezone.now())
    return HandlerResult(company=company)


# --- memberships -------------------------------------------------------------------------


def sync_membership(event: WebhookEvent) -> HandlerResult | None:
    """Grant, change or revoke a user's role in a company, through the one membership
    write path (:func:`otto.services.record_membership`, whose rules apply).

    ``.created``/``.updated`` with a mapped role grant it (and lift an earlier
    revocation); ``.deleted`` or an unmapped role revoke at once: the JWT check refuses a
    revoked membership even while the user's token is still valid.
    """
    envelope = _envelope(event)
    data = MembershipData.model_validate(envelope.data)
    org_id = data.organization.id
    company = Company.objects.filter(clerk_org_id=org_id).first()
    if company is None:
        return HandlerResult(
            status=Status.UNMATCHED,
            note=f"organization {org_id} is not a tenant yet; this event is replayed "
            "automatically when its organization.created arrives",
        )
    deleted = event.event_type == "organizationMembership.deleted"
    if not claim_version(data.id, _version(envelope, data.updated_at, deleted=deleted)):
        return _superseded(data.id, company)

    public = data.public_user_data
    role = map_role(data.role)
    try:
        services.record_membership(
            company,
            clerk_user_id=public.user_id,
            role=role,
            email=public.email,
            name=public.name,
            clerk_membership_id=data.id,
            deleted=deleted,
        )
    except services.MembershipReplaced as exc:
        return HandlerResult(status=Status.IGNORED, company=company, note=str(exc))
    if not deleted and role is None:
        return HandlerResult(
            company=company, note=f"role {data.role!r} has no Otto access; membership revoked"
        )
    return HandlerResult(company=company)


HANDLERS: dict[str, Handler] = {
    "user.created": sync_user,
    "user.updated": sync_user,
    "user.deleted": delete_user,
    "organization.created": sync_organization,
    "organization.updated": sync_organization,
    "organization.deleted": delete_organization,
    "organizationMembership.created": sync_membership,
    "organizationMembership.updated": sync_membership,
    "organizationMembership.deleted": sync_membership,
}

SOURCE = Source(provider=Provider.CLERK, headers=HEADERS, check=check_delivery, handlers=HANDLERS)
