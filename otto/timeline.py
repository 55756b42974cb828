"""A contact's timeline: one list, newest first, of everything that happened with them.

The core knows no domain, so each app contributes its own kind of item: it registers a
:class:`TimelineSource` in its ``AppConfig.ready()`` (calls, messages and consent events
now; appointments later). A page merges the sources on ``(at, type, id)``, descending,
with a keyset cursor over that triple: one query per source per page, whatever the page
size, and no item is skipped or repeated when two share a timestamp.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Model, Q, QuerySet
from rest_framework.serializers import BaseSerializer

from otto.models import Company, Contact, User


@dataclass(frozen=True)
class TimelineSource:
    type: str  # the item's "type" in the API, e.g. "call"
    at: str  # the model field that places an item in time, e.g. "started_at"
    # rows(company, contact, *, user, role): the contact's rows that this user may see.
    rows: Callable[..., QuerySet[Any]]
    # builtins.type: the field ``type`` above shadows the builtin inside this class body.
    serializer: builtins.type[BaseSerializer[Any]]


_sources: dict[str, TimelineSource] = {}


def register(source: TimelineSource) -> None:
    _sources[source.type] = source


def sources() -> list[TimelineSource]:
    return sorted(_sources.values(), key=lambda source: source.type)


@dataclass(frozen=True)
class Cursor:
    """The last item of the previous page: the next page starts strictly below it."""

    at: datetime
    type: str
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat(), self.type, self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode()

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """Raises ``ValueError`` on anything that is not a cursor this module made."""
        try:
            at, kind, pk = json.loads(base64.urlsafe_b64decode(value.encode()))
            return cls(datetime.fromisoformat(at), str(kind), int(pk))
        except (binascii.Error, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise ValueError("Invalid cursor.") from exc


@dataclass(frozen=True)
class TimelineItem:
    type: str
    at: datetime
    obj: Model
    source: TimelineSource

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, self.type, self.obj.pk)

    def data(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "at": self.at,
            "data": self.source.serializer(self.obj).data,
        }


def timeline_page(
    company: Company,
    contact: Contact,
    *,
    user: User,
    role: str,
    after: Cursor | None,
    size: int,
) -> tuple[list[TimelineItem], Cursor | None]:
    """Up to ``size`` items below ``after``, and the cursor of the next page (or None)."""
    items: list[TimelineItem] = []
    for source in sources():
        rows = source.rows(company, contact, user=user, role=role).exclude(**{source.at: None})
        if after is not None:
            rows = rows.filter(_below(source, after))
        for obj in rows.order_by(f"-{source.at}", "-pk")[: size + 1]:
            items.append(TimelineItem(source.type, getattr(obj, source.at), obj, source))
    items.sort(key=lambda item: (item.at, item.type, item.obj.pk), reverse=True)
    page = items[:size]
    return page, (page[-1].cursor if len(items) > size else None)


def _below(source: TimelineSource, cursor: Cursor) -> Q:
    """Rows of ``source`` that sort strictly after ``cursor`` in (at, type, id) descending."""
    earlier = Q(**{f"{source.at}__lt": cursor.at})
    if source.type < cursor.type:
        return earlier | Q(**{source.at: cursor.at})
    if source.type == cursor.type:
        return earlier | Q(**{source.at: cursor.at, "pk__lt": cursor.id})
    return earlier
