"""The KPIs' daily rollup (analysis.rollup): what it answers is what the raw tables say,
after every kind of change, at once, and under a concurrent recompute.

Acme's calls are test_kpis.py's (every figure worked out by hand there); here each figure
read from the rollup is compared with the same endpoint computed from the raw tables
(``fresh_days`` answering None, as for a tenant whose rollup is not built).
"""

from __future__ import annotations

import datetime
import threading

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from analysis import rollup, services
from analysis.models import CallAnalysis, KpiDay, KpiDirtyDay, KpiRollup
from appointments.models import Appointment, Lead
from calls.models import Call
from calls.services.details import apply_callrail_call
from integrations.callrail import schemas
from tests.analysis import test_kpis
from tests.analysis.test_kpis import RANGE, analyse, at, get
from tests.api.factories import CallFactory, LeadFactory

acme_calls = test_kpis.acme_calls  # the fixture, with its figures worked out by hand

KPIS = ("overview", "booking-trend", "top-objections", "reps")


def overview(kpi_from_rollup, member, **params):
    return kpi_from_rollup(member, "overview", **(RANGE | params))


def test_every_kpi_read_from_the_rollup_is_the_raw_tables_figure(
    acme_manager, acme_csr, acme_rep, acme_calls, kpi_from_rollup
):
    for kpi in KPIS:
        kpi_from_rollup(acme_manager, kpi, **RANGE)
        kpi_from_rollup(acme_manager, kpi, date_from="2026-02-01", date_to="2026-03-31")
        kpi_from_rollup(acme_csr, kpi, **RANGE)  # a CSR's own: the rollup's rows of their calls
        kpi_from_rollup(acme_manager, kpi, csr=acme_csr.user.pk, **RANGE)
        kpi_from_rollup(acme_rep, kpi, **RANGE)  # a rep's own: their leads' and appointments' calls
        kpi_from_rollup(acme_manager, kpi, rep=acme_rep.user.pk, **RANGE)
    days = KpiDay.objects.filter(company=acme_manager.company)
    handled = days.filter(kind=KpiDay.Kind.HANDLER).values_list("day", "person", "calls")
    # One row a day and handler; Mar 2's c2 (04:30 UTC Mar 3) is on New York's day.
    assert set(handled) >= {
        (datetime.date(2026, 3, 2), acme_csr.user.pk, 2),
        (datetime.date(2026, 3, 3), 0, 1),
        (datetime.date(2026, 3, 4), 0, 2),
    }
    # The rep's: c2, through its appointment and its contact's lead, counted once.
    reps = days.filter(kind=KpiDay.Kind.REP).values_list("day", "person", "calls", "booked")
    assert set(reps) == {(datetime.date(2026, 3, 2), acme_rep.user.pk, 1, 1)}


def test_a_lead_given_to_a_rep_makes_its_contacts_calls_theirs(
    acme_manager, acme_rep, acme_calls, kpi_from_rollup
):
    before = overview(kpi_from_rollup, acme_rep)["calls"]
    LeadFactory(company=acme_manager.company, contact=acme_calls["c3"].contact, assigned_rep=None)
    lead = Lead.objects.get(contact=acme_calls["c3"].contact)
    assert overview(kpi_from_rollup, acme_rep)["calls"] == before

    lead.assigned_rep = acme_rep.user
    lead.save()
    assert overview(kpi_from_rollup, acme_rep)["calls"] == before + 1

    lead.is_active = False  # closed: its contact's calls are no longer the rep's
    lead.save(update_fields=["is_active"])
    assert overview(kpi_from_rollup, acme_rep)["calls"] == before


def test_every_change_shows_at_once(acme_manager, acme_csr, acme_calls, kpi_from_rollup):
    c = acme_calls
    before = overview(kpi_from_rollup, acme_manager)
    assert (before["calls"], before["qualified"], before["booked"]) == (6, 4, 2)

    # A person's override through the API: c3 is not qualified after all.
    response = acme_manager.client().patch(
        f"/api/v1/calls/{c['c3'].pk}/analysis/", {"qualified": False}, format="json"
    )
    assert response.status_code == 200, response.content
    assert overview(kpi_from_rollup, acme_manager)["qualified"] == 3

    # Who handled c4, corrected through the API: the CSR's figures follow.
    csr_before = overview(kpi_from_rollup, acme_csr)["calls"]
    response = acme_manager.client().patch(
        f"/api/v1/calls/{c['c4'].pk}/", {"handled_by": acme_csr.user.pk}, format="json"
    )
    assert response.status_code == 200, response.content
    assert overview(kpi_from_rollup, acme_csr)["calls"] == csr_before + 1

    # c2's appointment deleted: c2 is no longer booked.
    Appointment.objects.filter(call=c["c2"]).delete()
    assert overview(kpi_from_rollup, acme_manager)["booked"] == 1

    # A new call, then a re-analysis of it that books it.
    new = CallFactory(company=acme_manager.company, started_at=at(3, 14))
    assert overview(kpi_from_rollup, acme_manager)["calls"] == 7
    analyse(new, qualified=True, status="booked")
    assert overview(kpi_from_rollup, acme_manager)["booked"] == 2

    # A call deleted (an erasure, a merged duplicate).
    c["c5"].delete()
    after = overview(kpi_from_rollup, acme_manager)
    assert (after["calls"], after["service_not_offered"]) == (6, 0)


def test_ingest_moving_a_call_to_another_day_moves_its_figures(
    acme_manager, acme_calls, kpi_from_rollup
):
    def calls_by_day() -> dict[str, int]:
        trend = kpi_from_rollup(acme_manager, "booking-trend", **RANGE)["results"]
        return {day["date"]: day["calls"] for day in trend}

    c1 = acme_calls["c1"]  # Mar 2 10:00 New York
    assert calls_by_day()["2026-03-02"] == 2

    # CallRail's API says the call started on Mar 4 (the webhook's time was a guess).
    found = schemas.Call(id=c1.external_id, answered=True, start_time=at(4, 10).isoformat())
    apply_callrail_call(Call.objects.get(pk=c1.pk), found)

    trend = calls_by_day()
    assert (trend["2026-03-02"], trend["2026-03-04"]) == (1, 3)


def test_a_time_zone_change_reads_the_raw_tables_until_the_rollup_is_rebuilt(
    acme_manager, acme_calls, kpi_from_rollup
):
    company = acme_manager.company
    company.timezone = "America/Los_Angeles"
    company.save()
    assert not rollup.is_built(company)
    # c8 (Mar 5 00:00 New York) is Mar 4 21:00 in Los Angeles: in the range now.
    assert get(acme_manager, "overview", **RANGE)["calls"] == 7

    assert rollup.catch_up()["rebuilt"] == 1  # Acme; Globex was built in its zone
    assert KpiRollup.objects.get(company=company).basis["timezone"] == "America/Los_Angeles"
    assert overview(kpi_from_rollup, acme_manager)["calls"] == 7


def test_the_schedule_recomputes_marked_days_and_drops_a_deleted_tenants_marks(
    acme_manager, acme_calls, globex
):
    company = acme_manager.company
    CallFactory(company=company, started_at=at(3, 14))
    assert KpiDirtyDay.objects.filter(tenant=company.pk, day=datetime.date(2026, 3, 3)).exists()
    gone = globex.pk
    CallFactory(company=globex, started_at=at(3, 14))
    globex.delete()
    assert KpiDirtyDay.objects.filter(tenant=gone).exists()

    counts = rollup.catch_up()

    assert counts["days"] >= 1
    assert not KpiDirtyDay.objects.exists()
    day = KpiDay.objects.filter(
        company=company, day=datetime.date(2026, 3, 3), kind=KpiDay.Kind.HANDLER
    )
    assert sum(day.values_list("calls", flat=True)) == 3  # c3, c4 and the new one


def test_the_rebuild_command_rebuilds_from_the_raw_tables(acme_manager, acme_calls, capsys):
    company = acme_manager.company
    rollup.flush(company)
    fields = ("day", "kind", "person", "calls")
    before = set(KpiDay.objects.filter(company=company).values_list(*fields))
    # Rows written around the application (a restore, COPY): the rollup does not know.
    KpiDay.objects.filter(company=company).update(calls=999)

    call_command("rebuild_kpi_rollup", "--company", company.slug)
    call_command("rebuild_kpi_rollup", "--company", company.slug)  # and again: the same

    assert set(KpiDay.objects.filter(company=company).values_list(*fields)) == before
    assert not KpiDay.objects.filter(company=company, calls=999).exists()
    assert f"{company.slug}: " in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_change_open_during_a_recompute_is_counted_by_the_next(acme_manager, acme_calls):
    """A recompute neither waits for a change whose transaction is still open nor loses it:
    the change's mark is an insert the recompute's delete cannot see, so it is there for
    the next recompute once the change commits."""
    company = acme_manager.company
    c3 = acme_calls["c3"]
    day = datetime.date(2026, 3, 3)
    rollup.flush(company)
    rollup.mark_call(c3)  # a mark from an earlier change, committed
    marked, release = threading.Event(), threading.Event()

    def change() -> None:
        try:
            with transaction.atomic():
                current = CallAnalysis.objects.get(call=c3, is_current=True)
                services.update_overrides(
                    company, current, {"qualified": False}, user=acme_manager.user
                )
                marked.set()
                release.wait(10)
        finally:
            connection.close()

    def qualified() -> int:
        rows = KpiDay.objects.filter(company=company, day=day, kind=KpiDay.Kind.HANDLER)
        return sum(rows.values_list("qualified", flat=True))

    writer = threading.Thread(target=change)
    writer.start()
    assert marked.wait(10)
    recompute = threading.Thread(
        target=lambda: (rollup.refresh_day(company, day), connection.close())
    )
    recompute.start()
    recompute.join(5)
    assert not recompute.is_alive()  # it did not wait for the open change
    # Mar 3: c3 and c4, both qualified as committed so far.
    assert qualified() == 2
    release.set()
    writer.join(10)

    marks = KpiDirtyDay.objects.filter(tenant=company.pk, day=day, call=c3.pk)
    assert marks.count() == 1  # the open change's mark outlived the recompute
    assert get(acme_manager, "overview", **RANGE)["qualified"] == 3  # c3 no longer
    assert qualified() == 1 and not marks.exists()


def test_off_postgresql_nothing_is_marked_or_recomputed(acme_manager, monkeypatch):
    # make run's embedded SQLite has no KPIs (501), so it keeps no rollup either: its
    # SQL is PostgreSQL's, and the schedule would fail every minute.
    monkeypatch.setattr(connection, "vendor", "sqlite")
    CallFactory(company=acme_manager.company, started_at=at(3, 14))

    assert not KpiDirtyDay.objects.exists()
    assert rollup.catch_up() == {"rebuilt": 0, "days": 0}
