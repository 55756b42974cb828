"""The gate: opt-outs block, quiet hours are the recipient's, the 24-hour reply exception."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from messaging import gate
from messaging.models import Message
from messaging.services import record_consent
from tests.messaging.conftest import CUSTOMER, WEST_CUSTOMER

NY = ZoneInfo("America/New_York")
# 22:30 in New York is 19:30 in San Francisco.
LATE_IN_NEW_YORK = datetime.datetime(2026, 3, 10, 22, 30, tzinfo=NY)
AUTOMATED = Message.Kind.FOLLOWUP
MANUAL = Message.Kind.MANUAL


def test_zones_come_from_the_number_and_fall_back_to_the_tenants(acme):
    acme.timezone = "America/Denver"

    assert gate.recipient_zone(acme, CUSTOMER).key == "America/New_York"
    assert gate.recipient_zone(acme, WEST_CUSTOMER).key == "America/Los_Angeles"
    # A toll-free number spans every US zone: the tenant's.
    assert gate.recipient_zone(acme, "+18005550100").key == "America/Denver"


def test_a_212_number_at_2230_new_york_time_is_deferred_to_0800_there(acme):
    decision = gate.check_send(acme, to=CUSTOMER, kind=AUTOMATED, now=LATE_IN_NEW_YORK)

    assert not decision.allowed and decision.deferred and decision.reason == "quiet_hours"
    assert decision.send_at == datetime.datetime(2026, 3, 11, 8, 0, tzinfo=NY)


def test_a_415_number_at_that_instant_is_sent(acme):
    assert gate.check_send(acme, to=WEST_CUSTOMER, kind=AUTOMATED, now=LATE_IN_NEW_YORK).allowed


def test_before_the_window_opens_the_same_day(acme):
    early = datetime.datetime(2026, 3, 10, 6, 15, tzinfo=NY)

    decision = gate.check_send(acme, to=CUSTOMER, kind=AUTOMATED, now=early)

    assert decision.send_at == datetime.datetime(2026, 3, 10, 8, 0, tzinfo=NY)


def test_the_tenants_window_applies(acme):
    acme.quiet_hours_start, acme.quiet_hours_end = datetime.time(9), datetime.time(23)

    assert gate.check_send(acme, to=CUSTOMER, kind=AUTOMATED, now=LATE_IN_NEW_YORK).allowed


def test_a_manual_message_in_quiet_hours_is_refused_with_the_next_window(acme):
    decision = gate.check_send(acme, to=CUSTOMER, kind=MANUAL, now=LATE_IN_NEW_YORK)

    assert not decision.allowed and not decision.deferred
    assert decision.send_at == datetime.datetime(2026, 3, 11, 8, 0, tzinfo=NY)


@pytest.mark.parametrize(("hours_ago", "allowed"), [(2, True), (23.9, True), (24.1, False)])
def test_a_manual_reply_within_24_hours_of_the_contacts_text_goes_out(acme, hours_ago, allowed):
    wrote = LATE_IN_NEW_YORK - datetime.timedelta(hours=hours_ago)

    decision = gate.check_send(
        acme, to=CUSTOMER, kind=MANUAL, now=LATE_IN_NEW_YORK, last_inbound_at=wrote
    )

    assert decision.allowed is allowed


def test_the_reply_exception_does_not_cover_automation(acme):
    wrote = LATE_IN_NEW_YORK - datetime.timedelta(hours=1)

    decision = gate.check_send(
        acme, to=CUSTOMER, kind=AUTOMATED, now=LATE_IN_NEW_YORK, last_inbound_at=wrote
    )

    assert decision.deferred


def test_an_opted_out_number_is_blocked_at_any_hour(acme):
    noon = datetime.datetime(2026, 3, 10, 12, tzinfo=NY)
    record_consent(acme, phone=CUSTOMER, action="opt_out", source="keyword")

    decision = gate.check_send(acme, to=CUSTOMER, kind=MANUAL, now=noon)

    assert not decision.allowed and decision.reason == "recipient_opted_out"


def test_another_tenants_opt_out_does_not_block_acme(acme, globex):
    noon = datetime.datetime(2026, 3, 10, 12, tzinfo=NY)
    record_consent(globex, phone=CUSTOMER, action="opt_out", source="keyword")

    assert gate.check_send(acme, to=CUSTOMER, kind=MANUAL, now=noon).allowed


def test_the_clock_is_the_recipients_not_the_servers(acme):
    # The server's local zone is irrelevant: only the instant counts.
    with time_machine.travel(LATE_IN_NEW_YORK, tick=False):
        from django.utils import timezone

        now = timezone.now()
        assert gate.check_send(acme, to=CUSTOMER, kind=AUTOMATED, now=now).deferred
        assert gate.check_send(acme, to=WEST_CUSTOMER, kind=AUTOMATED, now=now).allowed


# --- state windows and holidays --------------------------------------------------------

# Tuesday 10 March 2026, 20:30 in Miami (Eastern, like New York).
EVENING_ET = datetime.datetime(2026, 3, 10, 20, 30, tzinfo=NY)
FLORIDA = "+13055550100"
RHODE_ISLAND = "+14015550100"
TEXAS = "+12145550100"


@pytest.mark.parametrize(
    ("phone", "contact_state", "expected"),
    [
        (FLORIDA, "", "FL"),
        (CUSTOMER, "", "NY"),
        (CUSTOMER, "Florida", "FL"),  # the address wins over the area code
        (CUSTOMER, "fl", "FL"),
        ("+18005550100", "", ""),
        ("+447911123456", "", ""),
    ],
)
def test_the_state_comes_from_the_address_then_the_area_code(phone, contact_state, expected):
    assert gate.recipient_state(phone, contact_state) == expected


def test_florida_stops_at_2000_where_new_york_runs_to_2100(acme):
    florida = gate.check_send(acme, to=FLORIDA, kind=AUTOMATED, now=EVENING_ET)

    assert florida.deferred
    assert florida.send_at == datetime.datetime(2026, 3, 11, 8, 0, tzinfo=NY)
    assert gate.check_send(acme, to=CUSTOMER, kind=AUTOMATED, now=EVENING_ET).allowed


def test_a_new_york_number_of_a_florida_address_gets_floridas_window(acme):
    decision = gate.check_send(
        acme, to=CUSTOMER, kind=AUTOMATED, now=EVENING_ET, contact_state="FL"
    )

    assert decision.deferred


def test_texas_sunday_opens_at_noon(acme):
    chicago = ZoneInfo("America/Chicago")
    sunday_morning = datetime.datetime(2026, 3, 15, 10, 0, tzinfo=chicago)

    decision = gate.check_send(acme, to=TEXAS, kind=AUTOMATED, now=sunday_morning)

    assert decision.send_at == datetime.datetime(2026, 3, 15, 12, 0, tzinfo=chicago)


def test_rhode_island_sends_nothing_on_sunday_or_a_federal_holiday(acme):
    # Independence Day 2026 is a Saturday, observed on Friday 3 July: both are holidays.
    friday_observed = datetime.datetime(2026, 7, 3, 12, 0, tzinfo=NY)

    decision = gate.check_send(acme, to=RHODE_ISLAND, kind=AUTOMATED, now=friday_observed)

    # Friday and Saturday are holidays, Sunday is closed: Monday at 09:00.
    assert decision.send_at == datetime.datetime(2026, 7, 6, 9, 0, tzinfo=NY)


def test_rhode_island_saturday_window(acme):
    saturday = datetime.datetime(2026, 3, 14, 17, 30, tzinfo=NY)

    decision = gate.check_send(acme, to=RHODE_ISLAND, kind=AUTOMATED, now=saturday)

    assert decision.send_at == datetime.datetime(2026, 3, 16, 9, 0, tzinfo=NY)


def test_a_holiday_outside_rhode_island_keeps_the_tenants_window(acme):
    independence_day = datetime.datetime(2026, 7, 3, 12, 0, tzinfo=NY)

    assert gate.check_send(acme, to=CUSTOMER, kind=AUTOMATED, now=independence_day).allowed


def test_hours_that_never_meet_the_states_refuse_instead_of_crashing(acme):
    acme.quiet_hours_start, acme.quiet_hours_end = datetime.time(19), datetime.time(21)

    decision = gate.check_send(acme, to=RHODE_ISLAND, kind=AUTOMATED, now=EVENING_ET)

    assert not decision.allowed and not decision.deferred and decision.send_at is None
    assert decision.reason == "quiet_hours"
