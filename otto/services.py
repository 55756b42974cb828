"""Writes for the tenant core: memberships from tokens, company settings, contacts."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from integrations.callrail.client import CallRailClient
from integrations.errors import ProviderError
from otto import audit, selectors
from otto.crypto import Secret
from otto.models import (
    AuditAction,
    CallRailCompany,
    Company,
    Contact,
    Membership,
    PhoneNumber,
    Role,
    User,
)


class MembershipRevoked(Exception):
    """The user's membership was revoked; only a newer Clerk membership event restores it."""


class DuplicateContact(Exception):
    def __init__(self, existing: Contact) -> None:
        super().__init__(f"contact {existing.pk} already has this phone")
        self.existing = existing


class NumbersTaken(Exception):
    """Phone numbers that another tenant already holds."""

    def __init__(self, numbers: list[str]) -> None:
        super().__init__(", ".join(numbers))
        self.numbers = numbers


def check_phone(value: str, region: str | None = None) -> str:
    """``value`` in E.164, read in ``DEFAULT_PHONE_REGION`` when it has no country code."""
    try:
        number = phonenumbers.parse(str(value), region or settings.DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise ValidationError(f"{value!r} is not a phone number.") from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(number) and not _fictional(e164):
        raise ValidationError(f"{value!r} is not a valid phone number.")
    return e164


def _fictional(e164: str) -> bool:
    """NANP's 555-0100..0199, reserved for fiction: the demo data and the sandbox use them,
    and phonenumbers calls them invalid."""
    return len(e164) == 12 and e164[:2] == "+1" and e164[2] in "23456789" and e164[5:10] == "55501"


# --- memberships -------------------------------------------------------------------------
#
# One write path for every membership change, whoever reports it: a verified session token
# (otto.auth) or a Clerk membership event (otto.webhooks.clerk). The rules:
#
# 1. Revoked stays revoked. Only a Clerk membership event that grants a role lifts a
#    revocation; a token never does, whatever role it claims.
# 2. The newest Clerk state wins. Clerk events are applied in Clerk's version order (the
#    webhook handler drops an event older than one already applied), so an event always
#    carries Clerk's current word. A token is a snapshot at its issue time: its role wins
#    only when it was issued after the membership last changed (a webhook we missed); an
#    older token (say, from before a demotion) changes nothing.
# 3. A membership Otto never saw is created with the role claimed. A deletion of one Otto
#    never saw is remembered as revoked, so a token still claiming it is refused.
# 4. A user who left and rejoined has a new Clerk membership id: events about the old one
#    change nothing.


class MembershipReplaced(Exception):
    """The Clerk event is about a membership the user has since replaced (left and
    rejoined): it changes nothing."""


def record_membership(
    company: Company,
    *,
    clerk_user_id: str,
    role: Role | None,
    observed_at: datetime.datetime | None = None,
    email: str = "",
    name: str = "",
    clerk_membership_id: str | None = None,
    deleted: bool = False,
) -> Membership | None:
    """Apply what Clerk says about ``clerk_user_id``'s membership of ``company``.

    ``clerk_membership_id`` is set for a Clerk membership event and None for a token;
    ``role`` None is a Clerk role with no Otto access (it revokes, like ``deleted``);
    ``observed_at`` is when a token read Clerk's state (its ``iat``; events are ordered by
    their version before they get here). Returns the
    membership, or None when there is none to keep. A token on a revoked membership raises
    :class:`MembershipRevoked`; an event about a replaced one :class:`MembershipReplaced`.
    """
    user = _clerk_user(clerk_user_id, email=email, name=name)
    if clerk_membership_id is None:
        if role is None or deleted or observed_at is None:
            raise ValueError("a session token grants a mapped role as of its issue time")
        return _apply_token(company, user, role, observed_at)
    with transaction.atomic():
        return _apply_event(
            company, user, role, clerk_membership_id, revoke=deleted or role is None
        )


def join_company(
    company: Company,
    *,
    clerk_user_id: str,
    role: Role,
    email: str = "",
    name: str = "",
    issued_at: datetime.datetime,
) -> Membership:
    """The membership a verified session token claims (:func:`record_membership`)."""
    membership = record_membership(
        company,
        clerk_user_id=clerk_user_id,
        role=role,
        observed_at=issued_at,
        email=email,
        name=name,
    )
    assert membership is not None  # noqa: S101 - a token always grants a mapped role
    return membership


def _clerk_user(clerk_user_id: str, *, email: str, name: str) -> User:
    """The user, created when new (also a placeholder for a membership that beats its
    ``user.created``); an email or name it lacks is filled in, never overwritten."""
    user, created = User.objects.get_or_create(
        clerk_user_id=clerk_user_id,
        defaults={"username": clerk_user_id[:150], "email": email, "name": name},
    )
    if not created and ((email and not user.email) or (name and not user.name)):
        user.email = user.email or email
        user.name = user.name or name
        user.save(update_fields=["email", "name"])
    return user


def _apply_token(
    company: Company, user: User, role: Role, issued_at: datetime.datetime
) -> Membership:
    # No lock: this runs on every authenticated request, and the role change below is a
    # compare-and-set that only a newer token wins.
    membership, created = Membership.objects.select_related("user", "company").get_or_create(
        company=company, user=user, defaults={"role": role}
    )
    if membership.revoked_at is not None:
        raise MembershipRevoked(f"membership {membership.pk} was revoked")
    if created:
        audit_membership(AuditAction.MEMBERSHIP_CREATED, membership, "token", role=role)
    if not created and membership.role != role and issued_at > membership.updated_at:
        updated = Membership.objects.filter(
            pk=membership.pk, revoked_at__isnull=True, updated_at__lt=issued_at
        ).update(role=role, updated_at=timezone.now())
        if updated:
            audit_membership(
                AuditAction.MEMBERSHIP_ROLE_CHANGED,
                membership,
                "token",
                **{"from": membership.role, "to": role},
            )
            membership.role = role
    return membership


def audit_membership(
    action: AuditAction, membership: Membership, source: str, actor: Any = None, **details: Any
) -> None:
    """A membership change, for the tenant's audit log. ``source`` says who reported it:
    a Clerk session ``token``, a Clerk ``webhook`` event, or the ``admin``."""
    audit.record(
        action,
        company=membership.company,
        actor=actor,
        actor_label="" if actor is not None else f"clerk {source}",
        target_type="membership",
        target_id=membership.pk,
        changes={"user": membership.user_id, "source": source, **details},
    )


def _apply_event(
    company: Company, user: User, role: Role | None, clerk_membership_id: str, *, revoke: bool
) -> Membership | None:
    membership = Membership.objects.select_for_update().filter(company=company, user=user).first()
    if membership is not None and membership.clerk_membership_id not in (
        None,
        clerk_membership_id,
    ):
        raise MembershipReplaced(
            f"membership {clerk_membership_id} was replaced by {membership.clerk_membership_id}"
        )
    revoked = AuditAction.MEMBERSHIP_REVOKED
    if revoke:
        if membership is not None:
            if membership.revoked_at is None:
                membership.revoked_at = timezone.now()
                membership.save(update_fields=["revoked_at", "updated_at"])
                audit_membership(revoked, membership, "webhook", role=membership.role)
            return membership
        if role is None:
            return None
        membership = Membership.objects.create(
            user=user,
            company=company,
            role=role,
            clerk_membership_id=clerk_membership_id,
            revoked_at=timezone.now(),
        )
        audit_membership(revoked, membership, "webhook", role=role)
        return membership
    assert role is not None  # noqa: S101 - revoke is set whenever role is None
    if membership is None:
        membership = Membership.objects.create(
            user=user, company=company, role=role, clerk_membership_id=clerk_membership_id
        )
        audit_membership(AuditAction.MEMBERSHIP_CREATED, membership, "webhook", role=role)
        return membership
    before, was_revoked = membership.role, membership.revoked_at is not None
    membership.role, membership.clerk_membership_id = role, clerk_membership_id
    membership.revoked_at = None
    membership.save(update_fields=["role", "clerk_membership_id", "revoked_at", "updated_at"])
    if was_revoked:
        audit_membership(AuditAction.MEMBERSHIP_RESTORED, membership, "webhook", role=role)
    if before != role:
        changed = AuditAction.MEMBERSHIP_ROLE_CHANGED
        audit_membership(changed, membership, "webhook", **{"from": before, "to": role})
    return membership


# --- company settings --------------------------------------------------------------------

SECRET_FIELDS = ("callrail_api_key", "callrail_signing_key")


class CallRailCompanyTaken(Exception):
    """CallRail company ids that another tenant already holds (409)."""

    def __init__(self, callrail_ids: list[str]) -> None:
        super().__init__(", ".join(callrail_ids))
        self.callrail_ids = callrail_ids


class CallRailClaimRefused(Exception):
    """CallRail company ids the tenant's own CallRail key does not vouch for (422).

    ``code`` says why: ``callrail_company_not_listed`` (the account's company list does not
    have them), ``callrail_company_id_legacy`` (a numeric id, which no API lists),
    ``callrail_api_key_required`` (no key of its own to check them with) or
    ``callrail_credentials_refused`` (CallRail refused the key or account).
    """

    def __init__(self, code: str, message: str, callrail_ids: list[str]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.callrail_ids = callrail_ids


class CallRailUnavailable(Exception):
    """CallRail could not be asked (rate limit, 5xx, timeout): nothing was changed (503)."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def update_company(company: Company, *, actor: Any = None, **changes: Any) -> Company:
    """Apply a settings change: the only writer of CallRail ids and phone numbers.

    ``tracking_numbers`` and ``callrail_company_ids`` replace their sets; a secret given as
    "" or None is cleared. Numbers another tenant holds raise :class:`NumbersTaken`, CallRail
    ids another tenant holds :class:`CallRailCompanyTaken`. A newly claimed CallRail id (or
    every id, when the key or account changes) must be listed by the tenant's own CallRail
    key and account first (:func:`check_callrail_claim`), asked before the transaction
    opens. Nothing changes unless everything does. What changed is audited by field name
    (secrets apart, never their values), with ``actor``.
    """
    callrail_ids = changes.pop("callrail_company_ids", None)
    if callrail_ids is not None:
        callrail_ids = _distinct(str(value).strip() for value in callrail_ids)
    check_callrail_claim(company, callrail_ids, changes)
    return _apply_company_changes(company, changes, callrail_ids, actor=actor)


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))


def check_callrail_claim(
    company: Company, callrail_ids: list[str] | None, changes: dict[str, Any]
) -> None:
    """Refuse CallRail company ids that the tenant's own key and account do not list.

    Ids the tenant already holds are asked about again only when the key or the account
    changes. A legacy numeric id cannot be listed (CallRail lists ``COM…`` ids), so a new
    one is refused: add the ``COM…`` id. Calls CallRail; never inside a transaction.
    """
    held = set(selectors.callrail_company_ids(company))
    # Clearing the key reads nothing, so it needs no check; a new key or account does.
    credentials_change = any(
        name in changes and changes[name] != _current(company, name)
        for name in ("callrail_api_key", "callrail_account_id")
    ) and bool(changes.get("callrail_api_key", _current(company, "callrail_api_key")))
    wanted = held if callrail_ids is None else set(callrail_ids)
    to_check = sorted(wanted if credentials_change else wanted - held)
    if not to_check:
        return
    taken = selectors.callrail_ids_held_elsewhere(company, to_check)
    if taken:
        # Before asking CallRail: whose it is matters more than whether the key lists it.
        raise CallRailCompanyTaken(taken)
    new_legacy = sorted(value for value in wanted - held if not value.startswith("COM"))
    if new_legacy:
        raise CallRailClaimRefused(
            "callrail_company_id_legacy",
            "A numeric CallRail company id cannot be verified; give the COM… id instead.",
            new_legacy,
        )
    # Legacy ids held from before (the migration kept them) cannot be listed again.
    to_list = [value for value in to_check if value.startswith("COM")]
    if not to_list:
        return
    probe = Company(
        pk=company.pk,
        slug=company.slug,
        callrail_api_key=changes.get("callrail_api_key", company.callrail_api_key),
        callrail_account_id=changes.get("callrail_account_id", company.callrail_account_id),
    )
    api_key, account_id = selectors.callrail_credentials(probe)
    if not api_key or not account_id:
        raise CallRailClaimRefused(
            "callrail_api_key_required",
            "Set the CallRail API key and account id first: the company ids are checked "
            "against them.",
            to_list,
        )
    try:
        listed = {
            found.id
            for found in CallRailClient.with_credentials(
                api_key=api_key, account_id=account_id
            ).list_companies()
        }
    except ProviderError as exc:
        if exc.permanent:
            raise CallRailClaimRefused(
                "callrail_credentials_refused",
                "CallRail refused this API key for this account.",
                to_list,
            ) from exc
        raise CallRailUnavailable(str(exc), exc.retry_after) from exc
    missing = [value for value in to_list if value not in listed]
    if missing:
        raise CallRailClaimRefused(
            "callrail_company_not_listed",
            "This CallRail account's API key does not list these company ids.",
            missing,
        )


def _current(company: Company, name: str) -> Any:
    value = getattr(company, name)
    if name in SECRET_FIELDS:
        revealed = value.reveal() if hasattr(value, "reveal") else value
        return revealed or None
    return value


@transaction.atomic
def _apply_company_changes(
    company: Company, changes: dict[str, Any], callrail_ids: list[str] | None, *, actor: Any
) -> Company:
    company = Company.objects.select_for_update().get(pk=company.pk)
    audit_company_changes(company, changes, callrail_ids, actor=actor)
    tracking = changes.pop("tracking_numbers", None)
    twilio_number = changes.get("twilio_number", company.twilio_number)
    current_tracking = tracking if tracking is not None else selectors.tracking_numbers(company)
    if twilio_number and twilio_number in current_tracking:
        raise ValidationError({"tracking_numbers": "The Twilio number cannot also track calls."})
    for name, value in changes.items():
        if name in SECRET_FIELDS:
            value = Secret(value) if value else None
        setattr(company, name, value)
    company.save()
    if tracking is not None:
        _replace_numbers(company, PhoneNumber.Kind.TRACKING, tracking)
    if "twilio_number" in changes:
        _replace_numbers(
            company, PhoneNumber.Kind.SENDING, [twilio_number] if twilio_number else []
        )
    if callrail_ids is not None:
        _replace_callrail_ids(company, callrail_ids)
    return company


_COMPANY_FIELDS = frozenset(field.name for field in Company._meta.concrete_fields)


def audit_company_changes(
    company: Company,
    changes: dict[str, Any],
    callrail_ids: list[str] | None = None,
    *,
    actor: Any = None,
    actor_label: str = "",
) -> None:
    """Audit which of ``changes`` differ from ``company`` as stored: the names of settings
    (``company.settings_changed``) and of secrets set or cleared
    (``company.secret_changed``), never a value. Nothing is recorded for no change."""
    current: dict[str, Any] = {
        "tracking_numbers": selectors.tracking_numbers(company),
        "callrail_company_ids": selectors.callrail_company_ids(company),
    }
    wanted = dict(changes)
    if callrail_ids is not None:
        wanted["callrail_company_ids"] = callrail_ids
    settings_changed: list[str] = []
    secrets_set: list[str] = []
    secrets_cleared: list[str] = []
    for name, value in sorted(wanted.items()):
        if name in SECRET_FIELDS:
            new = value or None
            if new != _current(company, name):
                (secrets_set if new else secrets_cleared).append(name)
            continue
        if name not in current and name not in _COMPANY_FIELDS:
            continue  # not a setting (the admin form passes its own inputs along too)
        before = current[name] if name in current else getattr(company, name)
        if name in current:
            before, value = sorted(before), sorted(value)
        if before != value:
            settings_changed.append(name)
    if settings_changed:
        _audit_company(
            AuditAction.COMPANY_SETTINGS_CHANGED,
            company,
            {"fields": settings_changed},
            actor=actor,
            actor_label=actor_label,
        )
    if secrets_set or secrets_cleared:
        _audit_company(
            AuditAction.COMPANY_SECRET_CHANGED,
            company,
            {"set": secrets_set, "cleared": secrets_cleared},
            actor=actor,
            actor_label=actor_label,
        )


def _audit_company(
    action: AuditAction,
    company: Company,
    details: dict[str, Any],
    *,
    actor: Any,
    actor_label: str = "",
    request: HttpRequest | None = None,
) -> None:
    audit.record(
        action,
        company=company,
        actor=actor,
        actor_label=actor_label,
        request=request,
        target_type="company",
        target_id=company.pk,
        changes=details,
    )


def audit_company_created(
    company: Company, fields: list[str], secrets: list[str], *, actor: Any, request: HttpRequest
) -> None:
    """A company made by hand (the admin): the settings and secrets it started with."""
    details = {"created": True, "fields": sorted(fields)}
    _audit_company(
        AuditAction.COMPANY_SETTINGS_CHANGED, company, details, actor=actor, request=request
    )
    if secrets:
        _audit_company(
            AuditAction.COMPANY_SECRET_CHANGED,
            company,
            {"set": secrets, "cleared": []},
            actor=actor,
            request=request,
        )


def _replace_numbers(company: Company, kind: str, numbers: list[str]) -> None:
    taken = selectors.numbers_held_elsewhere(company, numbers)
    if taken:
        raise NumbersTaken(taken)
    PhoneNumber.objects.filter(company=company, kind=kind).exclude(number__in=numbers).delete()
    held = set(
        PhoneNumber.objects.filter(company=company, kind=kind).values_list("number", flat=True)
    )
    try:
        with transaction.atomic():
            PhoneNumber.objects.bulk_create(
                [
                    PhoneNumber(company=company, kind=kind, number=n)
                    for n in numbers
                    if n not in held
                ]
            )
    except IntegrityError:
        # Another tenant claimed one of them since the check above.
        raise NumbersTaken(selectors.numbers_held_elsewhere(company, numbers) or numbers) from None


def _replace_callrail_ids(company: Company, callrail_ids: list[str]) -> None:
    CallRailCompany.objects.filter(company=company).exclude(
        callrail_company_id__in=callrail_ids
    ).delete()
    held = set(selectors.callrail_company_ids(company))
    try:
        with transaction.atomic():
            CallRailCompany.objects.bulk_create(
                [
                    CallRailCompany(company=company, callrail_company_id=value)
                    for value in callrail_ids
                    if value not in held
                ]
            )
    except IntegrityError:
        # The unique constraint decides: another tenant claimed one since the check.
        taken = selectors.callrail_ids_held_elsewhere(company, callrail_ids)
        raise CallRailCompanyTaken(taken or callrail_ids) from None


# --- contacts ----------------------------------------------------------------------------


def create_contact(company: Company, *, phone: str, **fields: Any) -> Contact:
    """A new contact; the phone is unique per company (:class:`DuplicateContact`)."""
    phone = check_phone(phone)
    try:
        with transaction.atomic():
            return Contact.objects.create(company=company, phone=phone, **fields)
    except IntegrityError:
        existing = selectors.contact_with_phone(company, phone)
        if existing is None:
            raise
        raise DuplicateContact(existing) from None


def update_contact(company: Company, contact: Contact, **changes: Any) -> Contact:
    if contact.company_id != company.pk:
        raise ValueError("contact belongs to another company")
    if "phone" in changes:
        changes["phone"] = check_phone(changes["phone"])
    for name, value in changes.items():
        setattr(contact, name, value)
    try:
        with transaction.atomic():
            contact.save(update_fields=[*changes, "updated_at"])
    except IntegrityError:
        existing = selectors.contact_with_phone(company, changes.get("phone", ""))
        if existing is None:
            raise
        raise DuplicateContact(existing) from None
    return contact
