"""Erasing and exporting everything Otto holds on one person (docs/governance.md).

A person is a phone number within one company. The core knows no domain, so each app
registers what it owns in its ``AppConfig.ready()``::

    erasure.register("calls", erase=calls_erasure.erase, export=calls_erasure.export)

:func:`erase_contact` runs every part's ``erase`` in one database transaction, the highest
layer first (registration follows ``INSTALLED_APPS``, lowest first, and erasure goes in
reverse: a part's rows may point at a lower part's rows, never the other way round). Files
in storage are only collected meanwhile and deleted once the transaction has committed, so
a failure part-way leaves the whole person in place. The traces kept: the audit event,
which names the number by its keyed hash (:func:`phone_hash`), and, where the number was
opted out, an opt-out under its :func:`pseudonym` (messaging.erasure).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.storage import Storage
from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac

from integrations.models import WebhookEvent
from otto import audit
from otto.models import AuditAction, Company, Contact, IdempotencyKey

logger = logging.getLogger(__name__)

_HASH_SALT = "otto.erasure.phone"

Rows = list[dict[str, Any]]


def phone_hash(phone: str, secret: str | None = None) -> str:
    """HMAC-SHA256 of the E.164 number, keyed by ``SECRET_KEY`` (through Django's
    ``salted_hmac`` with its own salt), hex. The same number hashes the same in every
    company, so the hash alone never says which tenant erased it."""
    return salted_hmac(_HASH_SALT, phone, secret=secret, algorithm="sha256").hexdigest()


def phone_hashes(phone: str) -> list[str]:
    """The number's hash under ``SECRET_KEY`` and each of ``SECRET_KEY_FALLBACKS``, so a
    key rotation done Django's way keeps finding what was erased under the old key."""
    return [phone_hash(phone, secret) for secret in _secrets()]


def pseudonym(phone: str, secret: str | None = None) -> str:
    """A short keyed stand-in for the number that fits a phone column (``#`` and 19 hex
    digits of :func:`phone_hash`, 76 bits): what a ledger keeps in place of an erased
    number, so the number can be recognised again but never read back."""
    return "#" + phone_hash(phone, secret)[:19]


def pseudonyms(phone: str) -> list[str]:
    """:func:`pseudonym` under every key :func:`phone_hashes` tries."""
    return [pseudonym(phone, secret) for secret in _secrets()]


def _secrets() -> list[str]:
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


@dataclass(frozen=True)
class Person:
    """Whom an erasure or export is about: a number in a company, and its contact if any."""

    company: Company
    phone: str  # E.164
    contact: Contact | None

    def text_forms(self) -> tuple[str, ...]:
        """How the number may appear in stored text (webhook bodies, cached responses).

        The national digits alone cover E.164, ``1303…`` and form-encoded ``%2B1303…``;
        the formatted ones cover ``(303) 555-0123``, ``303-555-0123`` and the like."""
        parsed = phonenumbers.parse(self.phone)
        digits = str(parsed.national_number)
        forms = {
            self.phone,
            digits,
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        }
        if len(digits) == 10:
            area, exchange, line = digits[:3], digits[3:6], digits[6:]
            forms |= {f"{area}{sep}{exchange}{sep}{line}" for sep in ("-", ".", " ")}
            forms.add(f"({area}) {exchange}-{line}")
            forms.add(f"({area}){exchange}-{line}")
        return tuple(sorted(forms))

    def mentions(self, *fields: str) -> Q:
        """Rows whose text ``fields`` contain any form of the number."""
        condition = Q()
        for name in fields:
            for form in self.text_forms():
                condition |= Q(**{f"{name}__contains": form})
        return condition


@dataclass
class Erasure:
    """What one erasure removed (rows per model, files) and the files still to delete."""

    counts: Counter[str] = field(default_factory=Counter)
    files: list[tuple[Storage, str]] = field(default_factory=list)
    failed_files: list[str] = field(default_factory=list)

    def delete(self, queryset: QuerySet[Any]) -> int:
        """Delete the rows (and what cascades from them), counted per model label."""
        total, per_model = queryset.delete()
        for label, count in per_model.items():
            if count:
                self.counts[label] += count
        return total

    def count(self, kind: str, number: int) -> None:
        if number:
            self.counts[kind] += number

    def remove_file(self, storage: Storage, name: str) -> None:
        """Delete ``name`` from ``storage`` once the erasure has committed."""
        if name:
            self.files.append((storage, name))

    def delete_files(self) -> None:
        for storage, name in self.files:
            try:
                storage.delete(name)
            except Exception:
                # The rows are gone already; ops must remove this one by hand.
                logger.exception("erasure could not delete a stored file", extra={"key": name})
                self.failed_files.append(name)
            else:
                self.counts["storage files"] += 1


@dataclass(frozen=True)
class Part:
    name: str
    erase: Callable[[Person, Erasure], None]
    export: Callable[[Person], dict[str, Rows]]


_parts: dict[str, Part] = {}


def register(
    name: str,
    *,
    erase: Callable[[Person, Erasure], None],
    export: Callable[[Person], dict[str, Rows]],
) -> None:
    _parts[name] = Part(name, erase, export)


def parts() -> list[Part]:
    """In registration order: the core first, then each app as ``INSTALLED_APPS`` lists it."""
    return list(_parts.values())


def person(company: Company, phone: str) -> Person:
    """The person behind ``phone`` (any common format; ValidationError when it is none)."""
    from otto.services import check_phone

    phone = check_phone(phone)
    return Person(company, phone, Contact.objects.filter(company=company, phone=phone).first())


def erase_contact(
    company: Company, phone: str, *, actor: Any = None, request: HttpRequest | None = None
) -> Erasure:
    """Remove the person everywhere: every part's rows in one transaction, audited, then
    their files in storage. Returns what was removed (``failed_files`` lists stored keys
    that could not be deleted; the rows are gone regardless)."""
    subject = person(company, phone)
    hashed = phone_hash(subject.phone)
    erasure = Erasure()
    with transaction.atomic():
        for part in reversed(parts()):
            part.erase(subject, erasure)
        audit.record(
            AuditAction.CONTACT_ERASED,
            company=company,
            actor=actor,
            request=request,
            target_type="phone",
            target_id=hashed,
            changes={
                "phone_hash": hashed,
                "counts": dict(sorted(erasure.counts.items())),
                "files": len(erasure.files),
            },
        )
    # Runs now, or when an enclosing transaction commits (never if it rolls back).
    transaction.on_commit(erasure.delete_files)
    return erasure


def export_contact(
    company: Company, phone: str, *, actor: Any = None, request: HttpRequest | None = None
) -> dict[str, Any]:
    """Everything Otto holds on the person, as JSON-ready data (files as their storage
    keys, never their bytes); audited with the counts exported."""
    subject = person(company, phone)
    data: dict[str, Any] = {
        "company": company.slug,
        "phone": subject.phone,
        "exported_at": timezone.now(),
    }
    counts: dict[str, int] = {}
    for part in parts():
        exported = part.export(subject)
        data[part.name] = exported
        counts |= {f"{part.name}.{kind}": len(rows) for kind, rows in exported.items()}
    audit.record(
        AuditAction.CONTACT_EXPORTED,
        company=company,
        actor=actor,
        request=request,
        target_type="phone",
        target_id=phone_hash(subject.phone),
        changes={"counts": counts},
    )
    return data


def rows(queryset: QuerySet[Any], *, exclude: Iterable[str] = ()) -> Rows:
    """Each row's concrete fields by attribute name (``contact_id``…); a file is its key."""
    skip = set(exclude)
    out = []
    for obj in queryset.order_by("pk"):
        row: dict[str, Any] = {}
        for model_field in obj._meta.concrete_fields:
            if model_field.name in skip or model_field.attname in skip:
                continue
            value = getattr(obj, model_field.attname)
            if isinstance(model_field, models.FileField):
                value = value.name or ""
            row[model_field.attname] = value
        out.append(row)
    return out


# --- the core's own rows -------------------------------------------------------------------


def _core_events(subject: Person) -> QuerySet[WebhookEvent]:
    """The tenant's stored webhook deliveries whose body or headers mention the number."""
    return (
        WebhookEvent.objects.filter(company=subject.company)
        .annotate(headers_text=Cast("headers", models.TextField()))
        .filter(subject.mentions("body", "headers_text", "dedupe_key"))
    )


def _core_idempotency(subject: Person) -> QuerySet[IdempotencyKey]:
    """Stored API responses (Idempotency-Key replays) that carry the number."""
    return (
        IdempotencyKey.objects.filter(company=subject.company)
        .annotate(body_text=Cast("response_body", models.TextField()))
        .filter(subject.mentions("body_text", "path"))
    )


def _core_log_entries(subject: Person) -> QuerySet[LogEntry]:
    """The admin's history of the contact (its title is the name or the number)."""
    if subject.contact is None:
        return LogEntry.objects.none()
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Contact),
        object_id=str(subject.contact.pk),
    )


def _erase_core(subject: Person, erasure: Erasure) -> None:
    # A delivery's body is cleared, not the row: its dedupe key keeps a redelivery of the
    # same event from being processed (and the person written) again.
    events = list(_core_events(subject).values_list("pk", "dedupe_key"))
    mentioned = [pk for pk, key in events if any(f in key for f in subject.text_forms())]
    if mentioned:
        erasure.delete(WebhookEvent.objects.filter(pk__in=mentioned))
    cleared = WebhookEvent.objects.filter(pk__in=[pk for pk, _ in events if pk not in mentioned])
    erasure.count(
        "integrations.WebhookEvent (body erased)",
        cleared.update(body="", headers={}, last_error="body erased with a contact"),
    )
    erasure.delete(_core_idempotency(subject))
    erasure.delete(_core_log_entries(subject))
    erasure.delete(Contact.objects.filter(company=subject.company, phone=subject.phone))


def _export_core(subject: Person) -> dict[str, Rows]:
    return {
        "contacts": rows(Contact.objects.filter(company=subject.company, phone=subject.phone)),
        "webhook_events": rows(_core_events(subject), exclude=("claimed_at", "enqueue_failed_at")),
    }


def register_core() -> None:
    """The core's part: the contact, webhook bodies, stored responses, admin history.
    First in the list, so erased last (every app's rows point at the contact)."""
    register("core", erase=_erase_core, export=_export_core)
