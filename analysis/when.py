"""Appointment times: the day and time people agreed on, resolved against the call.

The model reports the time as said ("tomorrow at 10 am", "Friday at 2 pm", "2026-03-09 at
14:30"); Otto, not the model, turns it into an instant, in the tenant's time zone and
from the call's start, so "tomorrow at 10" on a 16:40 New York call is 10:00 New York time
the next day, across a daylight-saving change too (``zoneinfo`` gives the offset of that
day, not of the call's).
"""

from __future__ import annotations

import datetime
import re
from zoneinfo import ZoneInfo

DEFAULT_DURATION = datetime.timedelta(hours=1)

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_DAY = re.compile(r"\b(today|tonight|tomorrow|" + "|".join(_WEEKDAYS) + r")\b", re.IGNORECASE)
_CLOCK = re.compile(
    r"\b(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<half>a\.?\s?m\.?|p\.?\s?m\.?)?(?!\d)",
    re.IGNORECASE,
)
_NOON = re.compile(r"\bnoon\b", re.IGNORECASE)
_AT = re.compile(r"\bat\b", re.IGNORECASE)


def resolve_day(phrase: str, call_day: datetime.date) -> datetime.date | None:
    """The calendar day ``phrase`` names, counted from ``call_day`` (the call's local date)."""
    if iso := _ISO_DATE.search(phrase):
        try:
            return datetime.date(int(iso[1]), int(iso[2]), int(iso[3]))
        except ValueError:
            return None
    found = _DAY.search(phrase)
    if found is None:
        return None
    word = found[1].lower()
    if word in ("today", "tonight"):
        return call_day
    if word == "tomorrow":
        return call_day + datetime.timedelta(days=1)
    # A weekday is the next one after the call: "Monday" said on a Monday is next week's.
    ahead = (_WEEKDAYS.index(word) - call_day.weekday() - 1) % 7 + 1
    return call_day + datetime.timedelta(days=ahead)


def resolve_clock(phrase: str) -> datetime.time | None:
    """The time of day in ``phrase`` ("10", "10:30 am", "2 p.m.", "14:30", "noon")."""
    if _NOON.search(phrase):
        return datetime.time(12, 0)
    # Dates contain digits too: look at what follows the date, or after "at".
    text = _ISO_DATE.sub(" ", phrase)
    if (at := _AT.search(text)) is not None:
        text = text[at.end() :]
    for match in _CLOCK.finditer(text):
        hour, minute = int(match["hour"]), int(match["minute"] or 0)
        half = (match["half"] or "").lower().replace(".", "").replace(" ", "")
        if half == "pm" and hour < 12:
            hour += 12
        elif half == "am" and hour == 12:
            hour = 0
        if hour < 24 and minute < 60:
            return datetime.time(hour, minute)
    return None


def resolve_appointment(
    phrase: str | None,
    *,
    call_started_at: datetime.datetime,
    timezone: str,
    duration_minutes: int | None = None,
) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    """(start, end) in the tenant's zone, or (None, None) when no day and time can be read.

    A time with no day is on the call's day; a day with no time is left unresolved, since
    guessing an hour would put a wrong appointment in someone's calendar.
    """
    if not phrase:
        return None, None
    zone = ZoneInfo(timezone)
    call_day = call_started_at.astimezone(zone).date()
    day = resolve_day(phrase, call_day)
    clock = resolve_clock(phrase)
    if clock is None:
        return None, None
    local = datetime.datetime.combine(day or call_day, clock, tzinfo=zone)
    # A wall time skipped by a spring-forward change is normalised to the real instant.
    start = local.astimezone(datetime.UTC).astimezone(zone)
    minutes = duration_minutes if duration_minutes and 0 < duration_minutes <= 24 * 60 else None
    length = datetime.timedelta(minutes=minutes) if minutes else DEFAULT_DURATION
    end = (start.astimezone(datetime.UTC) + length).astimezone(zone)
    return start, end
