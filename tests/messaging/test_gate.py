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
