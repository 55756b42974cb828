"""The contact a call's customer number belongs to."""

from __future__ import annotations

from integrations.callrail import schemas
from otto import selectors as core_selectors
from otto import services as core_services
from otto.models import Company, Contact


def contact_for_caller(company: Company, phone: str, found: schemas.Call) -> Contact:
    """The company's contact with ``phone``; created if new (with the caller's name and
    place as CallRail reports them), race-safe through the unique ``(company, phone)``
    constraint (the loser of a race gets the winner's row)."""
    existing = core_selectors.contact_with_phone(company, phone)
    if existing is not None:
        return existing
    try:
        return core_services.create_contact(
            company,
            phone=phone,
            name=(found.customer_name or "")[:200],
            city=(found.customer_city or "")[:100],
            state=(found.customer_state or "")[:50],
        )
    except core_services.DuplicateContact as duplicate:
        return duplicate.existing
