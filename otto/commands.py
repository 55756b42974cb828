"""Helpers shared by management commands."""

from __future__ import annotations

from django.core.management.base import CommandError

from otto.models import Company


def find_company(ref: str) -> Company:
    """A company by slug, or by id when ``ref`` is a number."""
    lookup = {"pk": int(ref)} if ref.isdigit() else {"slug": ref}
    company = Company.objects.filter(**lookup).first()
    if company is None:
        raise CommandError(f"No company with {'id' if ref.isdigit() else 'slug'} {ref!r}.")
    return company
