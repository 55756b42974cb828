"""The consent gate: the one function every outbound message passes (:func:`check_send`).

Its rules, in order (docs/messaging.md):

1. a number whose latest consent event is an opt-out gets nothing but the one confirmation
   answering the text that opted it out;
2. quiet hours are the recipient's: the time zone comes from the number (``phonenumbers``),
   and the tenant's when the number spans several zones or none. The allowed window is the
   tenant's (``quiet_hours_start``–``quiet_hours_end``, 08:00–21:00 by default);
   A stricter state window narrows it (:data:`STATE_WINDOWS`); the state is the contact's
   when its address has one, otherwise the number's area code;
3. outside the window an automated message is deferred to the window's next opening, and a
   manual one is refused with that time, unless the contact texted within the last 24 hours
   (a person answering a person). An auto-reply (the HELP answer, an opt-out's
   confirmation) answers the text just received, so the same exception lets it go at once.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as phone_timezones

from messaging import selectors
from messaging.models import ConsentEvent, Message
from otto.models import Company

REPLY_WINDOW = datetime.timedelta(hours=24)
# The kinds the 24-hour reply exception covers.
REPLIES = frozenset({Message.Kind.MANUAL, Message.Kind.AUTO_REPLY})
Action = ConsentEvent.Action

Window = tuple[datetime.time, datetime.time] | None
_t = datetime.time
# Per state, per weekday (Monday 0 … Sunday 6), and for US federal holidays ("holiday"):
# the hours allowed local to the recipient, None for no messages that day. Checked against
# FL Stat. 501.059(8)(a), Okla. Stat. tit. 15 §775C.4, Md. Com. Law §14-4503(b),
# Miss. Code §77-3-725, Conn. Gen. Stat. §42-288a(c)(2), Tex. Bus. & Com. Code §301.051,
# R.I. Gen. Laws §5-61-3.4(a)(4) (docs/messaging.md). A state not listed has no window
# stricter than the tenant's.
_EVERY_DAY_8_TO_8: dict[int | str, Window] = dict.fromkeys(range(7), (_t(8), _t(20)))
STATE_WINDOWS: dict[str, dict[int | str, Window]] = {
    "FL": _EVERY_DAY_8_TO_8,
    "OK": _EVERY_DAY_8_TO_8,
    "MD": _EVERY_DAY_8_TO_8,
    "MS": _EVERY_DAY_8_TO_8,
    "CT": dict.fromkeys(range(7), (_t(9), _t(20))),
    "TX": {**dict.fromkeys(range(6), (_t(9), _t(21))), 6: (_t(12), _t(21))},
    "RI": {
        **dict.fromkeys(range(5), (_t(9), _t(18))),
        5: (_t(10), _t(17)),
        6: None,
        "holiday": None,
    },
}
_STATE_NAMES = {
    "FLORIDA": "FL",
    "OKLAHOMA": "OK",
    "MARYLAND": "MD",
    "MISSISSIPPI": "MS",
    "CONNECTICUT": "CT",
    "TEXAS": "TX",
    "RHODE ISLAND": "RI",
}

OPTED_OUT = "recipient_opted_out"
QUIET_HOURS = "quiet_hours"
NO_AI_VOICE_CONSENT = "no_ai_voice_consent"
NO_DISCLOSURE = "no_ai_call_disclosure"


class NoWindow(Exception):
    """The tenant's hours and the state's never overlap: nothing may go, ever, until the
    tenant widens its hours."""


@dataclasses.dataclass(frozen=True)
class Decision:
    """``allowed``; or the reason it is not, and for quiet hours when it may go."""

    allowed: bool
    reason: str = ""
    send_at: datetime.datetime | None = None
    # Automated messages are deferred to ``send_at``; manual ones refused.
    deferred: bool = False
    # An AI call's: the ai_voice opt-in it relies on (its proof).
    consent: ConsentEvent | None = None


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


def state_code(value: str) -> str:
    """A US state as its two-letter code ("Florida", "fl", "Miami, FL" → "FL")."""
    value = value.strip().upper()
    if len(value) == 2:
        return value
    tail = value.rsplit(",", 1)[-1].strip()
    return tail if len(tail) == 2 else _STATE_NAMES.get(value, "")


def recipient_state(phone: str, contact_state: str = "") -> str:
    """The contact's state when its address has one, else the area code's; "" unknown."""
    if contact_state.strip():
        return state_code(contact_state)
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return ""
    if number.country_code != 1:
        return ""
    return state_code(geocoder.description_for_number(number, "en"))


@functools.cache
def _holidays(state: str, year: int) -> holidays.HolidayBase:
    # The state's legal holidays, federal ones included.
    return holidays.country_holidays("US", subdiv=state, years=year)


def window_on(company: Company, state: str, day: datetime.date) -> Window:
    """The allowed hours on ``day``: the tenant's, narrowed by the state's."""
    start, end = company.quiet_hours_start, company.quiet_hours_end
    rules = STATE_WINDOWS.get(state)
    if rules is not None:
        key: int | str = day.weekday()
        if "holiday" in rules and day in _holidays(state, day.year):
            key = "holiday"
        state_window = rules.get(key, (start, end))
        if state_window is None:
            return None
        start, end = max(start, state_window[0]), min(end, state_window[1])
    return (start, end) if start < end else None


def next_window(
    company: Company, phone: str, now: datetime.datetime, contact_state: str = ""
) -> datetime.datetime | None:
    """None when ``now`` is inside the recipient's window; else when it next opens (UTC)."""
    zone = recipient_zone(company, phone)
    state = recipient_state(phone, contact_state)
    local = now.astimezone(zone)
    today = window_on(company, state, local.date())
    if today is not None and today[0] <= local.time() < today[1]:
        return None
    if today is not None and local.time() < today[0]:
        return datetime.datetime.combine(local.date(), today[0], tzinfo=zone).astimezone(
            datetime.UTC
        )
    # A window opens within a week whatever the rules (no rule closes every day).
    for ahead in range(1, 15):
        day = local.date() + datetime.timedelta(days=ahead)
        window = window_on(company, state, day)
        if window is not None:
            opening = datetime.datetime.combine(day, window[0], tzinfo=zone)
            return opening.astimezone(datetime.UTC)
    raise NoWindow(f"company {company.pk}'s hours leave no time to text {phone} ({state})")


def check_send(
    company: Company,
    *,
    to: str,
    kind: str,
    now: datetime.datetime,
    last_inbound_at: datetime.datetime | None = None,
    contact_state: str = "",
    reply_to: int | None = None,
) -> Decision:
    """May a message of ``kind`` go to ``to`` at ``now``? The only way out (DESIGN §9.4).

    ``contact_state`` is the state of the contact's address, when known. ``reply_to`` is
    the inbound message an auto-reply answers: the one message an opted-out number may
    still get is the confirmation answering the text that opted it out."""
    latest = selectors.latest_consent(company, to)
    if latest is not None and latest[0] == Action.OPT_OUT:
        confirms_it = reply_to is not None and latest[1] == reply_to
        if not (kind == Message.Kind.AUTO_REPLY and confirms_it):
            return Decision(False, OPTED_OUT)
    try:
        opening = next_window(company, to, now, contact_state)
    except NoWindow:
        return Decision(False, QUIET_HOURS)
    if opening is None:
        return Decision(True)
    # A person answering a person, or an auto-reply answering the text it replies to, is a
    # reply, not a solicitation.
    replying = last_inbound_at is not None and now - last_inbound_at <= REPLY_WINDOW
    if kind in REPLIES and replying:
        return Decision(True)
    if kind == Message.Kind.MANUAL:
        return Decision(False, QUIET_HOURS, send_at=opening)
    return Decision(False, QUIET_HOURS, send_at=opening, deferred=True)


def check_call(
    company: Company, *, to: str, now: datetime.datetime, contact_state: str = ""
) -> Decision:
    """May an AI call go to ``to`` at ``now``? Only with a recorded ai_voice opt-in that no
    opt-out followed (the decision carries it: the call's proof), with the tenant's
    disclosure script to open with, and inside the recipient's window; outside it the call
    is deferred to the window's opening, like automated texts (DESIGN §9.4)."""
    consent = selectors.ai_voice_consent(company, to)
    if consent is None:
        return Decision(False, NO_AI_VOICE_CONSENT)
    if not company.ai_call_disclosure_script.strip():
        return Decision(False, NO_DISCLOSURE)
    try:
        opening = next_window(company, to, now, contact_state)
    except NoWindow:
        return Decision(False, QUIET_HOURS)
    if opening is None:
        return Decision(True, consent=consent)
    return Decision(False, QUIET_HOURS, send_at=opening, deferred=True, consent=consent)
