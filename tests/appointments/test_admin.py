"""Outcomes in the admin: the pages render (lead history inline, an appointment's map link
or its geocode reason), and the calls admin's audited "re-apply outcomes" action."""

from __future__ import annotations

import pytest

from appointments import geocoding, pipeline
from appointments.models import Appointment, KeySignal, Lead, Task
from calls.models import Call, CallStageChange
from tests.appointments.conftest import APPLY, analysed_call

CALLS = "/admin/calls/call/"


@pytest.fixture
def applied(acme, sandbox):
    call = analysed_call(acme, "booked")
    pipeline.apply_call(call.pk)
    geocoding.geocode_appointment(Appointment.objects.get(call=call).pk)
    return call


def test_the_outcome_pages_render_read_only(admin_client, applied):
    lead = Lead.objects.get(contact=applied.contact)
    appointment = Appointment.objects.get(call=applied)

    page = admin_client.get(f"/admin/appointments/lead/{lead.pk}/change/").content.decode()
    assert "first call, analysis v1" in page and 'name="_save"' not in page
    listing = admin_client.get("/admin/appointments/appointment/").content.decode()
    assert f"query={appointment.latitude},{appointment.longitude}" in listing
    for model in ("appointment", "task", "keysignal", "lead"):
        assert admin_client.get(f"/admin/appointments/{model}/").status_code == 200
        assert admin_client.get(f"/admin/appointments/{model}/add/").status_code == 403


def test_a_posted_change_form_changes_nothing(admin_client, applied):
    # The page shows no save button; a crafted POST of the form is refused as well.
    lead = Lead.objects.get(contact=applied.contact)
    url = f"/admin/appointments/lead/{lead.pk}/change/"
    form = {"company": lead.company_id, "contact": lead.contact_id, "status": "closed_lost"}

    response = admin_client.post(url, {**form, "_save": "Save"})

    assert response.status_code == 403
    lead.refresh_from_db()
    assert lead.status == Lead.Status.QUALIFIED_BOOKED


def test_an_appointment_without_coordinates_shows_why(admin_client, applied):
    Appointment.objects.filter(call=applied).update(
        latitude=None,
        longitude=None,
        geocode_status="failed",
        geocode_error="google_maps: timed out",
    )

    listing = admin_client.get("/admin/appointments/appointment/").content.decode()

    assert "google_maps: timed out" in listing


def test_re_apply_outcomes_is_audited_and_runs_the_stage_again(
    admin_client, admin_user, applied, globex, run_tasks
):
    unanalysed = Call.objects.create(company=globex, external_id="CALnone", stage="recorded")

    with run_tasks() as worker:
        response = admin_client.post(
            CALLS,
            {"action": "reapply_outcomes", "_selected_action": [applied.pk, unanalysed.pk]},
            follow=True,
        )

    page = response.content.decode()
    assert "Outcomes re-applied for 1 call(s)." in page
    assert f"all {unanalysed.pk} is recorded: it has no outcomes to re-apply" in page
    assert worker.count(APPLY) == 1
    audit = CallStageChange.objects.filter(call=applied, to_stage="analyzed").latest("created_at")
    assert (audit.from_stage, audit.actor) == ("done", admin_user)
    assert audit.reason == "outcomes re-applied by ops"
    # and the stage made nothing twice
    assert Call.objects.get(pk=applied.pk).stage == "done"
    assert Appointment.objects.filter(call=applied).count() == 1
    assert Lead.objects.filter(contact=applied.contact).count() == 1
    assert Task.objects.filter(call=applied).count() == 0
    assert KeySignal.objects.filter(call=applied).count() == 0
