"""GET /api/v1/calls/{id}/."""

from calls.models import Call
from tests.calls_api.conftest import store_recording


def test_the_detail_shows_the_pipeline_and_the_recording_without_its_path(
    acme_csr, make_call, local_media
):
    call = make_call(
        acme_csr.company,
        stage=Call.Stage.FAILED,
        attempts=3,
        last_error="CallRail API: 500 after 3 attempts",
        customer_city="Denver",
        customer_state="CO",
    )
    store_recording(call)

    response = acme_csr.client().get(f"/api/v1/calls/{call.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["stage"] == "failed"
    assert body["attempts"] == 3
    assert body["last_error"] == "CallRail API: 500 after 3 attempts"
    assert (body["customer_city"], body["customer_state"]) == ("Denver", "CO")
    assert body["contact"]["id"] == call.contact_id
    assert body["recording"] == {
        "size": call.recording_size,
        "duration_seconds": 93,
        "content_type": "audio/mpeg",
        "url": f"/api/v1/calls/{call.pk}/recording/",
    }
    assert call.recording.name not in response.content.decode()
    assert "recordings/" not in response.content.decode().replace(
        f"/api/v1/calls/{call.pk}/recording/", ""
    )


def test_a_call_without_recording_says_so(acme_csr, make_call):
    call = make_call(acme_csr.company, answered=False, stage=Call.Stage.SKIPPED)

    body = acme_csr.client().get(f"/api/v1/calls/{call.pk}/").json()

    assert body["recording"] is None
    assert body["has_recording"] is False


def test_the_outsider_gets_404(acme, globex_manager, make_call):
    call = make_call(acme)

    response = globex_manager.client().get(f"/api/v1/calls/{call.pk}/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_calls_are_read_only_but_for_who_handled_them(acme_manager, make_call):
    call = make_call(acme_manager.company)
    client = acme_manager.client()

    assert client.post("/api/v1/calls/", {}).status_code == 405
    # PATCH takes only handled_by (tests/appointments_api/test_calls_behind_leads.py).
    assert client.patch(f"/api/v1/calls/{call.pk}/", {"stage": "done"}).status_code == 400
    assert client.put(f"/api/v1/calls/{call.pk}/", {"stage": "done"}).status_code == 405
    assert client.delete(f"/api/v1/calls/{call.pk}/").status_code == 405
    call.refresh_from_db()
    assert call.stage == "recorded"
