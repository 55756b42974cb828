"""followups/ (list, filters, retrieve, PATCH, approve, cancel): roles, the 409s of illegal
moves in the error shape, tenant isolation; and the follow-up and recovery admin actions."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from messaging import services
from messaging.models import FollowUp, Message, MissedCallRecovery
from tests.api.factories import make_followup, make_recovery

Status = FollowUp.Status
URL = "/api/v1/followups/"


def _url(followup: FollowUp, suffix: str = "") -> str:
    return f"{URL}{followup.pk}/{suffix}"


def _status(followup: FollowUp) -> str:
    followup.refresh_from_db()
    return followup.status


def test_the_list_newest_first_with_the_contract_fields_and_filters(acme, acme_csr):
    older, newer = make_followup(acme), make_followup(acme)
    FollowUp.objects.filter(pk=older.pk).update(status=Status.SENT)
    client = acme_csr.client()

    rows = client.get(URL).json()["results"]
    drafts = client.get(URL, {"status": "draft"}).json()["results"]
    sms = client.get(URL, {"channel": "sms"}).json()["results"]
    calls = client.get(URL, {"channel": "ai_call"}).json()["results"]
    due_after = (newer.scheduled_for - datetime.timedelta(seconds=1)).isoformat()
    later = client.get(URL, {"date_from": due_after}).json()["results"]

    assert [row["id"] for row in rows] == [newer.pk, older.pk]
    assert set(rows[0]) >= {
        "id",
        "call",
        "contact",
        "channel",
        "status",
        "body",
        "scheduled_for",
        "approved_by",
        "approved_at",
        "status_reason",
        "message",
    }
    assert [row["id"] for row in drafts] == [newer.pk]
    assert len(sms) == 2 and calls == []
    assert [row["id"] for row in later] == [newer.pk]
    assert client.get(URL, {"status": "nope"}).status_code == 400
    assert client.get(_url(older)).json()["status"] == Status.SENT


def test_a_draft_is_edited_by_a_person(acme, acme_manager):
    followup = make_followup(acme)

    response = acme_manager.client().patch(
        _url(followup), {"body": "  Hi Marcus, any questions on the quote?  "}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["body"] == "Hi Marcus, any questions on the quote?"
    assert response.json()["drafted_by"] == FollowUp.DraftedBy.PERSON


@pytest.mark.parametrize("body", [{}, {"body": ""}, {"body": "x" * 1601}])
def test_a_bad_edit_is_a_400_and_changes_nothing(acme, acme_csr, body):
    followup = make_followup(acme)

    response = acme_csr.client().patch(_url(followup), body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert FollowUp.objects.get(pk=followup.pk).body == followup.body


def test_approve_then_cancel_and_the_illegal_moves_are_409(acme, acme_csr):
    followup = make_followup(acme)
    client = acme_csr.client()

    approved = client.post(_url(followup, "approve/"))
    again = client.post(_url(followup, "approve/"))
    edit = client.patch(_url(followup), {"body": "changed"}, format="json")
    cancelled = client.post(_url(followup, "cancel/"))
    twice = client.post(_url(followup, "cancel/"))

    assert approved.status_code == 200 and approved.json()["status"] == Status.APPROVED
    assert approved.json()["approved_by"] == acme_csr.membership.user_id
    assert approved.json()["scheduled_for"] is not None
    for response, status in [(again, "approved"), (edit, "approved"), (twice, "cancelled")]:
        assert response.status_code == 409, response.content
        error = response.json()["error"]
        assert error["code"] == "illegal_transition" and error["details"] == {"status": status}
        assert error["request_id"]
    assert cancelled.status_code == 200 and cancelled.json()["status"] == Status.CANCELLED
    assert cancelled.json()["status_reason"].startswith("cancelled by")
    assert _status(followup) == Status.CANCELLED


def test_a_sent_follow_up_cannot_be_cancelled(acme, acme_manager):
    followup = make_followup(acme)
    FollowUp.objects.filter(pk=followup.pk).update(status=Status.SENT)

    response = acme_manager.client().post(_url(followup, "cancel/"))

    assert response.status_code == 409 and _status(followup) == Status.SENT


def test_sales_reps_have_no_follow_up_queue(acme, acme_rep):
    followup = make_followup(acme)
    client = acme_rep.client()

    assert client.get(URL).status_code == 403
    assert client.post(_url(followup, "approve/")).status_code == 403
    assert _status(followup) == Status.DRAFT


def test_another_tenants_follow_up_is_404_on_every_route(acme, globex_manager):
    followup = make_followup(acme)
    client = globex_manager.client()

    responses = [
        client.get(_url(followup)),
        client.patch(_url(followup), {"body": "mine now"}, format="json"),
        client.post(_url(followup, "approve/")),
        client.post(_url(followup, "cancel/")),
    ]

    assert [r.status_code for r in responses] == [404] * 4
    assert {r.json()["error"]["code"] for r in responses} == {"not_found"}
    assert client.get(URL).json()["results"] == []
    fresh = FollowUp.objects.get(pk=followup.pk)
    assert (fresh.status, fresh.body) == (Status.DRAFT, followup.body)


# --- the admin -------------------------------------------------------------------------------


def test_the_admin_approves_and_cancels_the_selected_rows_each_under_its_company(
    acme, globex, staff_client
):
    drafts = [make_followup(acme), make_followup(globex)]
    sent = make_followup(acme)
    FollowUp.objects.filter(pk=sent.pk).update(status=Status.SENT)
    changelist = reverse("admin:messaging_followup_changelist")

    response = staff_client.post(
        changelist,
        {"action": "approve_selected", "_selected_action": [f.pk for f in [*drafts, sent]]},
        follow=True,
    )

    assert b"Approved 2 follow-up(s)." in response.content
    assert b"Skipped 1" in response.content
    assert [_status(f) for f in drafts] == [Status.APPROVED] * 2
    assert {
        f.approved_by.username for f in FollowUp.objects.filter(pk__in=[d.pk for d in drafts])
    } == {"ops"}
    assert _status(sent) == Status.SENT

    staff_client.post(
        changelist, {"action": "cancel_selected", "_selected_action": [drafts[1].pk, sent.pk]}
    )
    assert [_status(drafts[1]), _status(sent)] == [Status.CANCELLED, Status.SENT]
    assert FollowUp.objects.get(pk=drafts[1].pk).status_reason == "cancelled by ops"


def test_the_follow_up_pages_render_read_only_with_the_call_link(acme, staff_client):
    followup = make_followup(acme)

    listing = staff_client.get(reverse("admin:messaging_followup_changelist"))
    page = staff_client.get(reverse("admin:messaging_followup_change", args=[followup.pk]))

    call_url = reverse("admin:calls_call_change", args=[followup.call_id]).encode()
    assert listing.status_code == 200 and call_url in listing.content
    assert page.status_code == 200 and followup.body.encode() in page.content
    assert b'name="_save"' not in page.content
    assert staff_client.get(reverse("admin:messaging_followup_add")).status_code == 403


def test_the_recovery_admin_shows_its_steps_and_stops_the_selected(acme, staff_client):
    row, other = make_recovery(acme), make_recovery(acme)
    thread = services.ensure_thread(acme, row.contact.phone)
    Message.objects.create(
        company=acme,
        thread=thread,
        direction=Message.Direction.OUTBOUND,
        body="Sorry we missed your call!",
        status=Message.Status.SENT,
        to_number=row.contact.phone,
        kind=Message.Kind.RECOVERY,
        recovery=row,
    )

    page = staff_client.get(reverse("admin:messaging_missedcallrecovery_change", args=[row.pk]))
    assert page.status_code == 200 and b"Sorry we missed your call!" in page.content

    staff_client.post(
        reverse("admin:messaging_missedcallrecovery_changelist"),
        {"action": "stop_selected", "_selected_action": [row.pk]},
    )
    row.refresh_from_db()
    other.refresh_from_db()
    assert (row.status, row.stopped_reason, row.next_action_at) == (
        MissedCallRecovery.Status.STOPPED,
        "stopped in the admin by ops",
        None,
    )
    assert other.status == MissedCallRecovery.Status.ACTIVE


def test_managers_opt_the_tenant_in_to_sending_without_approval(acme, acme_manager):
    response = acme_manager.client().patch(
        "/api/v1/company/",
        {"followup_auto_send": True, "followup_text": "Hi {name}, {company} here."},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["followup_auto_send"] is True
    acme.refresh_from_db()
    assert acme.followup_auto_send and acme.followup_text == "Hi {name}, {company} here."
