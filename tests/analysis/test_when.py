"""Appointment times resolved against the call's start and the tenant's time zone."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from analysis.when import resolve_appointment, resolve_clock, resolve_day

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")


def resolve(phrase, started_at, timezone="America/New_York", minutes=None):
    start, end = resolve_appointment(
        phrase, call_started_at=started_at, timezone=timezone, duration_minutes=minutes
    )
    return (start.isoformat() if start else None, end.isoformat() if end else None)


def test_tomorrow_at_10_on_a_1640_new_york_call():
    call = datetime.datetime(2026, 6, 10, 16, 40, tzinfo=NY)
    assert resolve("tomorrow at 10", call) == (
        "2026-06-11T10:00:00-04:00",
        "2026-06-11T11:00:00-04:00",
    )


def test_across_the_spring_forward_change():
    # Saturday 7 March 2026, 16:40 EST; clocks go forward on Sunday 8 March.
    call = datetime.datetime(2026, 3, 7, 16, 40, tzinfo=NY)
    start, _ = resolve("tomorrow at 10 am", call)
    assert start == "2026-03-08T10:00:00-04:00"
    # the night is an hour shorter: 16 h 20 min later, not the 17 h 20 min that adding a
    # day to the call's own offset would give
    instant = datetime.datetime.fromisoformat(start)
    assert instant - call == datetime.timedelta(hours=16, minutes=20)


def test_across_the_fall_back_change():
    call = datetime.datetime(2026, 10, 31, 16, 40, tzinfo=NY)
    assert resolve("tomorrow at 10 am", call)[0] == "2026-11-01T10:00:00-05:00"


def test_the_tenants_zone_decides_the_day_not_utc():
    # 23:30 in Los Angeles is already the next day in UTC.
    call = datetime.datetime(2026, 6, 10, 23, 30, tzinfo=LA)
    assert resolve("tomorrow at 9 am", call, "America/Los_Angeles")[0] == (
        "2026-06-11T09:00:00-07:00"
    )
    # the same instant for a New York tenant: it is 02:30 on the 11th there
    assert resolve("tomorrow at 9 am", call)[0] == "2026-06-12T09:00:00-04:00"


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("today at 3 pm", "2026-06-10T15:00:00-04:00"),  # a Wednesday
        ("Friday at 2 p.m.", "2026-06-12T14:00:00-04:00"),
        ("wednesday at 8:30am", "2026-06-17T08:30:00-04:00"),  # said on a Wednesday
        ("2026-07-01 at 14:30", "2026-07-01T14:30:00-04:00"),
        ("tomorrow at noon", "2026-06-11T12:00:00-04:00"),
        ("tomorrow at 12 am", "2026-06-11T00:00:00-04:00"),
    ],
)
def test_phrases(phrase, expected):
    call = datetime.datetime(2026, 6, 10, 16, 40, tzinfo=NY)
    assert resolve(phrase, call)[0] == expected


def test_a_day_without_a_time_is_left_unresolved():
    call = datetime.datetime(2026, 6, 10, 16, 40, tzinfo=NY)
    assert resolve("sometime tomorrow", call) == (None, None)
    assert resolve(None, call) == (None, None)
    assert resolve("", call) == (None, None)


def test_the_duration_sets_the_end():
    call = datetime.datetime(2026, 6, 10, 16, 40, tzinfo=NY)
    assert resolve("tomorrow at 9 am", call, minutes=90)[1] == "2026-06-11T10:30:00-04:00"


def test_day_and_clock_helpers():
    assert resolve_day("next monday", datetime.date(2026, 6, 10)) == datetime.date(2026, 6, 15)
    assert resolve_day("2026-02-30", datetime.date(2026, 6, 10)) is None
    assert resolve_clock("at 25:00") is None
    assert resolve_clock("9:15 PM") == datetime.time(21, 15)
