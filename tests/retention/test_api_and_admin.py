"""Retention as people see it: the windows in the company settings (API and admin), a
purged recording said to be purged, and the read-only run log."""

from __future__ import annotations

import pytest

from otto import retention
from otto.models import Company, RetentionRun
from tests.api.factories import company_admin_form
from tests.retention.conftest import aged_call, set_windows

COMPANY = "/api/v1/company/"


def test_a_manager_sets_and_clears_windows(acme_manager):
    client = acme_manager.client()

    response = client.patch(
        COMPANY, {"retention_recordings_days": 30, "retention_messages_days": 365}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["retention_recordings_days"], body["retention_messages_days"]) == (30, 365)
    assert body["retention_transcripts_days"] is None
    response = client.patch(COMPANY, {"retention_recordings_days": None}, format="json")
    assert response.json()["retention_recordings_days"] is None
    assert Company.objects.get(pk=acme_manager.company.pk).retention_messages_days == 365


@pytest.mark.parametrize("days", [0, -5, 3651, "soon"])
def test_a_window_out_of_bounds_is_refused_and_nothing_changes(acme_manager, days):
    response = acme_manager.client().patch(
        COMPANY, {"retention_transcripts_days": days, "name": "Renamed"}, format="json"
    )

    assert response.status_code == 400
    assert "retention_transcripts_days" in response.json()["error"]["details"]
    company = Company.objects.get(pk=acme_manager.company.pk)
    assert (company.retention_transcripts_days, company.name) == (None, "Acme Heating")


def test_a_csr_cannot_change_windows(acme_csr):
    response = acme_csr.client().patch(COMPANY, {"retention_recordings_days": 1}, format="json")

    assert response.status_code == 403
    assert Company.objects.get(pk=acme_csr.company.pk).retention_recordings_days is None


def test_the_admin_edits_windows_and_refuses_bad_ones(admin_client, acme):
    url = f"/admin/otto/company/{acme.pk}/change/"
    page = admin_client.get(url)
    for field in retention.WINDOWS.values():
        assert f'name="{field}"' in page.content.decode()
    form = company_admin_form(admin_client, acme)

    refused = admin_client.post(url, {**form, "retention_webhook_bodies_days": "0"})
    acme.refresh_from_db()
    assert refused.status_code == 200 and "greater than or equal to 1" in refused.content.decode()
    assert acme.retention_webhook_bodies_days is None

    saved = admin_client.post(url, {**form, "retention_webhook_bodies_days": "14"})
    acme.refresh_from_db()
    assert saved.status_code == 302 and acme.retention_webhook_bodies_days == 14


def test_the_api_says_a_recording_was_purged_instead_of_linking_to_it(
    acme_manager, globex_manager, s3
):
    set_windows(acme_manager.company, recordings=30)
    call = aged_call(acme_manager.company, 31)
    retention.purge_company(acme_manager.company)
    client = acme_manager.client()

    detail = client.get(f"/api/v1/calls/{call.pk}/").json()
    listed = client.get("/api/v1/calls/").json()["results"]
    audio = client.get(f"/api/v1/calls/{call.pk}/recording/")

    assert detail["recording"] is None and detail["recording_purged_at"] is not None
    assert [(c["has_recording"], c["recording_purged_at"] is not None) for c in listed] == [
        (False, True)
    ]
    assert audio.status_code == 404
    assert "retention policy" in audio.json()["error"]["message"]
    # The outsider learns nothing about it.
    outsider = globex_manager.client().get(f"/api/v1/calls/{call.pk}/recording/")
    assert outsider.status_code == 404 and "retention" not in outsider.content.decode()


def test_the_admin_says_a_recording_was_purged(admin_client, acme, s3):
    set_windows(acme, recordings=30)
    call = aged_call(acme, 31)
    retention.purge_company(acme)

    page = admin_client.get(f"/admin/calls/call/{call.pk}/change/").content.decode()
    audio = admin_client.get(f"/admin/calls/call/{call.pk}/recording/")

    assert "under the company&#x27;s retention policy" in page
    assert "<audio" not in page
    assert audio.status_code == 404


def test_the_run_log_is_read_only(admin_client, acme, s3):
    set_windows(acme, recordings=30)
    aged_call(acme, 31)
    retention.purge_company(acme)
    run = RetentionRun.objects.get()

    listing = admin_client.get("/admin/otto/retentionrun/").content.decode()
    detail = admin_client.get(f"/admin/otto/retentionrun/{run.pk}/change/")

    assert "files_deleted 1, recordings 1" in listing
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert admin_client.get("/admin/otto/retentionrun/add/").status_code == 403
    assert admin_client.post(f"/admin/otto/retentionrun/{run.pk}/delete/").status_code == 403


def test_a_recording_fetched_again_after_the_purge_is_offered_again(acme_manager, s3):
    from calls.services import StoredRecording
    from tests.calls_api.conftest import store_recording

    set_windows(acme_manager.company, recordings=30)
    call = aged_call(acme_manager.company, 31)
    retention.purge_company(acme_manager.company)
    call.refresh_from_db()

    # Ingest points the call at the new audio with these fields (calls.services.ingest).
    stored = store_recording(call)
    fields = StoredRecording(stored.recording.name, 10, "0" * 64, "audio/mpeg").fields()
    type(call).objects.filter(pk=call.pk).update(**fields)
    detail = acme_manager.client().get(f"/api/v1/calls/{call.pk}/").json()

    assert detail["recording"] is not None and detail["recording_purged_at"] is None


def test_the_admin_says_a_webhook_body_was_blanked(admin_client, acme):
    from integrations.models import WebhookEvent
    from tests.retention.conftest import webhook_event

    set_windows(acme, webhook_bodies=14)
    event = webhook_event(acme, 15, WebhookEvent.Status.PROCESSED)
    retention.purge_company(acme)

    page = admin_client.get(f"/admin/integrations/webhookevent/{event.pk}/change/")

    assert "blanked under the tenant&#x27;s webhook-body retention window" in page.content.decode()
    assert "Pat Caller" not in page.content.decode()
