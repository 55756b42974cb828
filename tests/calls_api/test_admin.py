"""The Call and RecordingAccess admin: list, detail with player and webhooks, actions."""

from datetime import UTC, datetime

import pytest
from django.test import Client

from calls.models import Call, RecordingAccess
from integrations.models import WebhookEvent
from otto.logging import mask_phone
from tests.api.factories import CallFactory, ContactFactory
from tests.calls_api.conftest import AUDIO, store_recording

CHANGELIST = "/admin/calls/call/"


def change_url(call) -> str:
    return f"/admin/calls/call/{call.pk}/change/"


@pytest.fixture
def ingest_requests(monkeypatch):
    """calls.services.request_ingest, recorded instead of run."""
    requested: list[tuple[int, int, bool]] = []

    def fake(call: Call, *, refetch_recording: bool = False) -> None:
        requested.append((call.pk, call.company_id, refetch_recording))

    monkeypatch.setattr("calls.services.request_ingest", fake)
    return requested


def test_mask_phone_keeps_only_the_last_four_digits():
    assert mask_phone("+13035554559") == "+1 •••-•••-4559"
    assert mask_phone("+447911123456") == "+44 ••• 3456"


def test_the_changelist_renders_masked_numbers(admin_client, acme, globex):
    acme_call = CallFactory(company=acme, customer_number="+13035554559")
    CallFactory(company=globex, customer_number="+17205550199")

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    page = response.content.decode()
    assert "+1 •••-•••-4559" in page and "+1 •••-•••-0199" in page
    assert "3035554559" not in page and "7205550199" not in page
    assert acme.name in page and globex.name in page
    assert acme_call.get_stage_display() in page


@pytest.mark.parametrize(
    "query",
    [
        {"company__id__exact": "ACME"},
        {"stage__exact": "failed"},
        {"answered__exact": "0"},
        {"started_at__gte": "2026-03-01 00:00+00:00", "started_at__lt": "2026-03-02 00:00+00:00"},
        {"q": "(303) 555-0142"},
        {"q": "CALFAILED"},
    ],
    ids=lambda q: ",".join(q),
)
def test_filters_and_search_find_the_call(admin_client, acme, globex, query):
    wanted = CallFactory(
        company=acme,
        external_id="CALFAILED",
        stage=Call.Stage.FAILED,
        answered=False,
        customer_number="+13035550142",
    )
    other = CallFactory(
        company=globex,
        external_id="CALOTHER",
        stage=Call.Stage.DONE,
        started_at=datetime(2026, 2, 1, tzinfo=UTC),
    )
    if query.get("company__id__exact"):
        query = {"company__id__exact": acme.pk}

    response = admin_client.get(CHANGELIST, query)

    assert response.status_code == 200
    results = [row.pk for row in response.context["cl"].result_list]
    assert wanted.pk in results
    assert other.pk not in results


def test_the_stage_filter_offers_and_finds_calls_being_ingested(admin_client, acme, globex):
    held = CallFactory(company=acme, stage=Call.Stage.INGESTING)
    waiting = CallFactory(company=globex, stage=Call.Stage.RECEIVED)

    page = admin_client.get(CHANGELIST).content.decode()
    assert "stage__exact=ingesting" in page and "Ingesting" in page

    response = admin_client.get(CHANGELIST, {"stage__exact": "ingesting"})
    results = [row.pk for row in response.context["cl"].result_list]
    assert held.pk in results and waiting.pk not in results


def test_the_detail_plays_the_recording_and_links_the_webhooks(admin_client, acme, local_media):
    call = store_recording(CallFactory(company=acme, contact=ContactFactory(company=acme)))
    event = WebhookEvent.objects.create(
        provider="callrail", company=acme, dedupe_key="k1", event_type="call.completed"
    )
    call.webhook_events.add(event)

    page = admin_client.get(change_url(call)).content.decode()

    player = f'<audio controls preload="none" src="/admin/calls/call/{call.pk}/recording/">'
    assert player in page
    assert f'href="/admin/integrations/webhookevent/{event.pk}/change/"' in page
    assert 'name="_save"' not in page
    assert not RecordingAccess.objects.exists()  # rendering the page fetches nothing


def test_the_admin_player_link_is_audited_and_plays(admin_client, admin_user, acme, local_media):
    call = store_recording(CallFactory(company=acme))

    response = admin_client.get(f"/admin/calls/call/{call.pk}/recording/")

    assert response.status_code == 302
    assert b"".join(Client().get(response["Location"]).streaming_content) == AUDIO
    access = RecordingAccess.objects.get()
    assert (access.company, access.call, access.user) == (acme, call, admin_user)


def test_the_detail_of_a_call_without_recording(admin_client, acme):
    call = CallFactory(company=acme, answered=False)

    response = admin_client.get(change_url(call))

    assert response.status_code == 200
    assert "No recording." in response.content.decode()
    assert admin_client.get(f"/admin/calls/call/{call.pk}/recording/").status_code == 404


@pytest.mark.parametrize(
    ("action", "refetch"), [("rerun_ingest", False), ("refetch_recording", True)]
)
def test_bulk_actions_hand_each_call_to_ingest_under_its_company(
    admin_client, acme, globex, ingest_requests, action, refetch
):
    acme_call, globex_call = CallFactory(company=acme), CallFactory(company=globex)
    CallFactory(company=acme)  # not selected

    response = admin_client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [acme_call.pk, globex_call.pk]},
        follow=True,
    )

    assert sorted(ingest_requests) == sorted(
        [(acme_call.pk, acme.pk, refetch), (globex_call.pk, globex.pk, refetch)]
    )
    assert "requested for 2 call(s)" in response.content.decode()


@pytest.mark.parametrize(("path", "refetch"), [("reingest", False), ("refetch-recording", True)])
def test_the_single_call_buttons(admin_client, acme, ingest_requests, path, refetch):
    call = CallFactory(company=acme)

    response = admin_client.post(f"/admin/calls/call/{call.pk}/{path}/", follow=True)

    assert ingest_requests == [(call.pk, acme.pk, refetch)]
    assert "requested for 1 call(s)" in response.content.decode()
    assert admin_client.get(f"/admin/calls/call/{call.pk}/{path}/").status_code == 405


def test_staff_without_change_permission_cannot_run_actions(client, acme, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_call"))
    client.force_login(viewer)
    call = CallFactory(company=acme)

    assert client.post(f"/admin/calls/call/{call.pk}/reingest/").status_code == 403


def test_recording_access_is_read_only_in_the_admin(admin_client, acme):
    call = CallFactory(company=acme)
    access = RecordingAccess.objects.create(company=acme, call=call, ip_address="203.0.113.9")

    assert admin_client.get("/admin/calls/recordingaccess/").status_code == 200
    detail = admin_client.get(f"/admin/calls/recordingaccess/{access.pk}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert admin_client.get("/admin/calls/recordingaccess/add/").status_code == 403


def test_a_tenant_user_without_staff_gets_no_admin_recording(client, acme_manager, local_media):
    call = store_recording(CallFactory(company=acme_manager.company))
    client.force_login(acme_manager.user)

    response = client.get(f"/admin/calls/call/{call.pk}/recording/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert not RecordingAccess.objects.exists()
