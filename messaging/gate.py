"""The consent gate: the one function every outbound message passes (:func:`check_send`).

Its rules, in order (docs/messaging.md):

1. a number whose latest consent event is an opt-out gets nothing;
2. quiet hours are the recipient's: the time zone comes from the number (``phonenumbers``),
   and the tenant's when the number spans several zones or none. The allowed window is the
   tenant's (``quiet_hours_start``–``quiet_hours_end``, 08:00–21:00 by default);
3. outside the window an automated message is deferred to the window's next opening, and a
   manual one is refused with that time, unless the contact texted within the last 24 hours
   (a person answering a person).

State windows and federal holidays are not applied yet (see docs/messaging.md).
"""

from __future__ import annotations

import dataclasses
import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

from messaging import selectors
from messaging.models import Message
from otto.models import Company

REPLY_WINDOW = datetime.timedelta(hours=24)

OPTED_OUT = "recipient_opted_out"
QUIET_HOURS = "quiet_hours"


@dataclasses.dataclass(frozen=True)
class Decision:
    """``allowed``; or the reason it is not, and for quiet hours when it may go."""

    allowed: bool
    reason: str = ""
    send_at: datetime.datetime | None = None
    # Automated messages are deferred to ``send_at``; manual ones refused.
    deferred: bool = False


def recipient_zone(company: Company, phone: str) -> ZoneInfo:
    """The recipient's time zone from the number; the tenant's when it is ambiguous."""
    try:
        zones = set(phone_timezones.time_zones_for_number(phonenumbers.parse(phone, None)))
    except phonenumbers.NumberParseException:
        zones = set()
    zones.discard(phone_timezones.UNKNOWN_TIMEZONE)
    name = zones.pop() if len(zones) == 1 else company.timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def next_window(company: Company, phone: str, now: datetime.datetime) -> datetime.datetime | None:
    """None when ``now`` is inside the recipient's window; else when it next opens (UTC)."""
    zone = recipient_zone(company, phone)
    local = now.astimezone(zone)
    start, end = company.quiet_hours_start, company.quiet_hours_end
    if start <= local.time() < end:
        return None
    day = local.date() if local.time() < start else local.date() + datetime.timedelta(days=1)
    opening = datetime.datetime.combine(day, start, tzinfo=zone)
    return opening.astimezone(datetime.UTC)


def check_send(
    company: Company,
    *,
    to: str,
    kind: str,
    now: datetime.datetime,
    last_inbound_at: datetime.datetime | None = None,
) -> Decision:
    """May a message of ``kind`` go to ``to`` at ``now``? The only way out (DESIGN §9.4)."""
    if selectors.is_opted_out(company, to):
        return Decision(False, OPTED_OUT)
    opening = next_window(company, to, now)
    if opening is None:
        return Decision(True)
    if kind == Message.Kind.MANUAL:
        if last_inbound_at is not None and now - last_inbound_at <= REPLY_WINDOW:
            return Decision(True)
        return Decision(False, QUIET_HOURS, send_at=opening)
    return Decision(False, QUIET_HOURS, send_at=opening, deferred=True)
