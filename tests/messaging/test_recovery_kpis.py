"""metrics/recovery/ (and the overview's recovery_rate) against recoveries whose every
figure is worked out by hand.

Acme is in New York (EST, -05:00 in March 2026). The range is Mon 2 – Wed 4 March:

| call | missed (NY)   | recovery  | first text to Twilio | reply  | appointment (contact) |
|------|---------------|-----------|----------------------|--------|-----------------------|
| m1   | Mar 2 10:00   | replied   | +30 s (+2 h nudge)   | +1 h   | made +2 d: recovered  |
| m2   | Mar 2 23:30 ¹ | escalated | +120 s               | —      | made +8 d: too late   |
| m3   | Mar 3 12:00   | stopped   | blocked by the gate  | +5 h ² | +1 d, cancelled       |
| m4   | Mar 4 09:00 ³ | active    | +60 s                | —      | made +3 d: recovered  |
| m5   | Mar 4 10:00   | none      |                      |        |                       |
| m0   | Mar 1 23:59   | replied   | +10 s (day before)   | +1 min | made +1 h             |
| a1   | Mar 3 15:00   | — (answered: not missed)                                         |

¹ 04:30 UTC on Mar 3: it counts on New York's Mar 2. ² after the recovery ended: a reply
arrived all the same. ³ the CSR's line rang. Globex has one missed call in the range,
texted, replied and recovered.

missed 5 (m1–m5), texted 3 (m1, m2, m4), replied 2 (m1, m3), recovered 2 (m1, m4),
recovery rate 2/5, median first response of 30, 120, 60 s = 60 s.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from analysis import kpis, rollup
from appointments.models import Appointment
from messaging import services
from messaging.models import Message, MissedCallRecovery, Thread
from tests.api.factories import AppointmentFactory, CallFactory, ContactFactory

NY = ZoneInfo("America/New_York")
RANGE = {"date_from": "2026-03-02", "date_to": "2026-03-04"}
METRICS = "/api/v1/metrics/"
Status = MissedCallRecovery.Status
SECOND = datetime.timedelta(seconds=1)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)


def at(day: int, hour: int, minute: int = 0) -> datetime.datetime:
    return datetime.datetime(2026, 3, day, hour, minute, tzinfo=NY)


def missed_call(company, started, *, recovery=None, answered=False, handled_by=None):
    """A call; with ``recovery`` (a status) its recovery, returned with the call."""
    contact = ContactFactory(company=company)
    call = CallFactory(
        company=company,
        contact=contact,
        started_at=started,
        answered=answered,
        handled_by=handled_by,
        stage="skipped" if not answered else "recorded",
    )
    if recovery is None:
        return call, None
    return call, MissedCallRecovery.objects.create(
        company=company,
        call=call,
        contact=contact,
        started_at=started,
        cooldown_until=started + DAY,
        status=recovery,
    )


def text(recovery, after, status=Message.Status.DELIVERED):
    """A recovery text handed to Twilio ``after`` the missed call."""
    thread, _ = Thread.objects.get_or_create(
        company=recovery.company, contact=recovery.contact, defaults={"phone": "+12125550100"}
    )
    return Message.objects.create(
        company=recovery.company,
        thread=thread,
        direction=Message.Direction.OUTBOUND,
        kind=Message.Kind.RECOVERY,
        recovery=recovery,
        status=status,
        from_number="+13035550100",
        to_number=thread.phone,
        body="Sorry we missed your call!",
        claimed_at=recovery.started_at + after,
    )


def reply(recovery, after):
    thread, _ = Thread.objects.get_or_create(
        company=recovery.company, contact=recovery.contact, defaults={"phone": "+12125550100"}
    )
    message = Message.objects.create(
        company=recovery.company,
        thread=thread,
        direction=Message.Direction.INBOUND,
        status=Message.Status.DELIVERED,
        from_number=thread.phone,
        to_number="+13035550100",
        body="Yes please call me",
    )
    Message.objects.filter(pk=message.pk).update(created_at=recovery.started_at + after)


def appointment(recovery, after, **fields):
    made = AppointmentFactory(company=recovery.company, contact=recovery.contact, **fields)
    Appointment.objects.filter(pk=made.pk).update(created_at=recovery.started_at + after)


@pytest.fixture
def recoveries(acme_manager, acme_csr, globex):
    acme = acme_manager.company
    _, m1 = missed_call(acme, at(2, 10), recovery=Status.REPLIED)
    text(m1, 30 * SECOND)
    text(m1, 2 * HOUR)
    reply(m1, HOUR)
    appointment(m1, 2 * DAY)

    _, m2 = missed_call(acme, at(2, 23, 30), recovery=Status.ESCALATED)
    text(m2, 120 * SECOND, Message.Status.SENT)
    appointment(m2, 8 * DAY)

    _, m3 = missed_call(acme, at(3, 12), recovery=Status.STOPPED)
    text(m3, 0 * SECOND, Message.Status.BLOCKED)
    reply(m3, 5 * HOUR)
    appointment(m3, DAY, status=Appointment.Status.CANCELLED)

    _, m4 = missed_call(acme, at(4, 9), recovery=Status.ACTIVE, handled_by=acme_csr.user)
    text(m4, 60 * SECOND)
    appointment(m4, 3 * DAY)

    missed_call(acme, at(4, 10))
    missed_call(acme, at(3, 15), answered=True)

    _, m0 = missed_call(acme, at(1, 23, 59), recovery=Status.REPLIED)
    text(m0, 10 * SECOND)
    reply(m0, 60 * SECOND)
    appointment(m0, HOUR)

    _, outsider = missed_call(globex, at(3, 10), recovery=Status.REPLIED)
    text(outsider, 5 * SECOND)
    reply(outsider, HOUR)
    appointment(outsider, HOUR)


def get(member, kpi: str, **params):
    response = member.client().get(f"{METRICS}{kpi}/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_every_recovery_figure(acme_manager, recoveries):
    assert get(acme_manager, "recovery", **RANGE) == {
        "date_from": "2026-03-02",
        "date_to": "2026-03-04",
        "missed_calls": 5,  # m1–m5
        "texted": 3,  # m1, m2, m4; m3's text was blocked
        "replied": 2,  # m1 (replied), m3 (a reply after it stopped)
        "recovered": 2,  # m1, m4; m2's came too late, m3's was cancelled
        "recovery_rate": 2 / 5,  # recovered ÷ missed calls
        "median_first_response_seconds": 60.0,  # of 30, 120, 60; m1's nudge is not first
        "unavailable_reason": None,
    }
    assert get(acme_manager, "overview", **RANGE)["recovery_rate"] == 2 / 5


def test_the_time_zone_boundary(acme_manager, recoveries):
    # m2 at 23:30 New York is 04:30 UTC on 3 March: it counts on New York's 2 March.
    monday = get(acme_manager, "recovery", date_from="2026-03-02", date_to="2026-03-02")
    tuesday = get(acme_manager, "recovery", date_from="2026-03-03", date_to="2026-03-03")

    assert {k: monday[k] for k in ("missed_calls", "texted", "replied", "recovered")} == {
        "missed_calls": 2,
        "texted": 2,
        "replied": 1,
        "recovered": 1,
    }
    assert (monday["recovery_rate"], monday["median_first_response_seconds"]) == (0.5, 75.0)
    assert (tuesday["missed_calls"], tuesday["texted"], tuesday["replied"]) == (1, 0, 1)
    assert (tuesday["recovery_rate"], tuesday["median_first_response_seconds"]) == (0.0, None)


def test_an_empty_range(acme_manager, recoveries):
    body = get(acme_manager, "recovery", date_from="2026-02-01", date_to="2026-02-02")

    assert {
        k: body[k] for k in ("missed_calls", "texted", "replied", "recovered")
    } == dict.fromkeys(("missed_calls", "texted", "replied", "recovered"), 0)
    assert (body["recovery_rate"], body["median_first_response_seconds"]) == (None, None)
    assert (
        get(acme_manager, "overview", date_from="2026-02-01", date_to="2026-02-02")["recovery_rate"]
        is None
    )


def test_another_tenants_recoveries_do_not_count(globex_manager, recoveries):
    body = get(globex_manager, "recovery", **RANGE)

    assert (body["missed_calls"], body["texted"], body["replied"], body["recovered"]) == (
        1,
        1,
        1,
        1,
    )
    assert body["median_first_response_seconds"] == 5.0


def test_a_csr_gets_the_recoveries_of_the_calls_they_handled(
    acme_manager, acme_csr, acme_rep, recoveries
):
    mine = get(acme_csr, "recovery", **RANGE)
    theirs = get(acme_manager, "recovery", **RANGE, csr=acme_csr.user.pk)

    assert mine == theirs
    assert (mine["missed_calls"], mine["texted"], mine["recovered"]) == (1, 1, 1)  # m4
    assert (mine["recovery_rate"], mine["median_first_response_seconds"]) == (1.0, 60.0)
    # A rep with no leads or appointments among these calls has none.
    assert get(acme_rep, "recovery", **RANGE)["missed_calls"] == 0


def test_the_figures_are_null_when_messaging_registers_none(acme_manager, monkeypatch):
    monkeypatch.setitem(kpis._registered, "recovery", None)

    body = get(acme_manager, "recovery", **RANGE)

    assert body["missed_calls"] is None
    assert body["unavailable_reason"] == kpis.RECOVERY_PENDING


def test_the_query_count_is_fixed(acme_manager, recoveries, django_assert_num_queries):
    client = acme_manager.client()
    client.get(f"{METRICS}recovery/", RANGE)  # warm the JWKS and membership caches

    # The company, the user and the membership; 3 for kpis.without_jit (in a test its
    # transaction is a savepoint: SAVEPOINT, SET LOCAL jit = off, RELEASE); 3 for the missed
    # calls from the daily rollup (is it built, which days are dirty, the sums); then one
    # query for every recovery figure.
    with django_assert_num_queries(10):
        assert client.get(f"{METRICS}recovery/", {"date_from": "2026-01-01"}).status_code == 200


@pytest.fixture
def from_rollup_and_raw(acme_manager, kpi_from_rollup):
    """metrics/recovery/ over the range as the daily rollup answers it, equal to the raw
    tables' (tests/conftest.py)."""
    return lambda: kpi_from_rollup(acme_manager, "recovery", **RANGE)


def test_the_daily_rollup_counts_recovered_calls_as_the_raw_tables_do(
    acme_manager, recoveries, from_rollup_and_raw
):
    acme = acme_manager.company
    assert from_rollup_and_raw()["recovered"] == 2  # m1, m4

    # m4's booking cancelled (a save, as the API and the admin make it): no longer recovered.
    m4 = MissedCallRecovery.objects.get(company=acme, call__started_at=at(4, 9))
    visit = Appointment.objects.get(contact=m4.contact)
    visit.status = Appointment.Status.CANCELLED
    visit.save()
    assert from_rollup_and_raw()["recovered"] == 1

    # A wider window (10 days) recovers m2 (booked after 8): the raw tables answer at once,
    # the rollup once the schedule has rebuilt it under the new window.
    acme.recovery_window_days = 10
    acme.save()
    assert not rollup.is_built(acme)
    assert get(acme_manager, "recovery", **RANGE)["recovered"] == 2
    rollup.catch_up()
    assert rollup.is_built(acme)
    assert from_rollup_and_raw()["recovered"] == 2
    assert get(acme_manager, "overview", **RANGE)["recovery_rate"] == 2 / 5


def test_a_text_sent_failed_or_answered_moves_the_rollups_figures_at_once(
    acme_manager, recoveries, from_rollup_and_raw
):
    acme = acme_manager.company
    m2 = MissedCallRecovery.objects.get(company=acme, call__started_at=at(2, 23, 30))
    m3 = MissedCallRecovery.objects.get(company=acme, call__started_at=at(3, 12))
    assert (from_rollup_and_raw()["texted"], from_rollup_and_raw()["replied"]) == (3, 2)

    # A second recovery text for m3, queued 90 s after the call, then Twilio says sent.
    queued = text(m3, 90 * SECOND, Message.Status.QUEUED)
    assert from_rollup_and_raw()["texted"] == 3
    assert services.record_status(queued, Message.Status.SENT)
    sent = from_rollup_and_raw()
    assert sent["texted"] == 4
    assert sent["median_first_response_seconds"] == 75.0  # of 30, 60, 90, 120

    # It was not delivered after all.
    assert services.record_status(queued, Message.Status.UNDELIVERED)
    failed = from_rollup_and_raw()
    assert (failed["texted"], failed["median_first_response_seconds"]) == (3, 60.0)

    # m2's customer writes back.
    reply(m2, 3 * HOUR)
    assert from_rollup_and_raw()["replied"] == 3
