"""Typed Clerk webhook payloads (providers.md §5.2). Unknown keys are ignored: Clerk adds
fields freely, and only the ones Otto syncs are read."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class Envelope(_Model):
    type: str
    data: dict[str, Any]
    # Epoch milliseconds when Clerk emitted the event.
    timestamp: int | None = None


class EmailAddress(_Model):
    id: str
    email_address: str = ""


class UserData(_Model):
    id: str
    email_addresses: list[EmailAddress] = []
    primary_email_address_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    updated_at: int | None = None

    @property
    def email(self) -> str:
        for address in self.email_addresses:
            if address.id == self.primary_email_address_id:
                return address.email_address
        return self.email_addresses[0].email_address if self.email_addresses else ""

    @property
    def name(self) -> str:
        return full_name(self.first_name, self.last_name)


class DeletedData(_Model):
    """``user.deleted`` and ``organization.deleted`` carry only the id."""

    id: str
    deleted: bool = True


class OrganizationData(_Model):
    id: str
    name: str = ""
    slug: str | None = None
    updated_at: int | None = None


class PublicUserData(_Model):
    user_id: str
    identifier: str = ""
    first_name: str | None = None
    last_name: str | None = None

    @property
    def email(self) -> str:
        # The identifier is the email for email sign-ins, else a phone number or username.
        return self.identifier if "@" in self.identifier else ""

    @property
    def name(self) -> str:
        return full_name(self.first_name, self.last_name)


class MembershipData(_Model):
    id: str
    role: str = ""
    organization: OrganizationData
    public_user_data: PublicUserData
    updated_at: int | None = None


def full_name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part).strip()
