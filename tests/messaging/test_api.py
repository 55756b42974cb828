"""threads/, threads/{id}/messages/ (GET and POST), threads/{id}/read/: roles and isolation."""

from __future__ import annotations

import datetime
import uuid

import pytest
import time_machine

from messaging.models import Message, Thread
from messaging.services import ensure_thread, record_consent
from tests.messaging.conftest import CUSTOMER, WEST_CUSTOMER, text_in

Status = Message.Status
NOON_NY = datetime.datetime(2026, 3, 10, 17, 0, tzinfo=datetime.UTC)
LATE_NY = datetime.datetime(2026, 3, 11, 3, 30, tzinfo=datetime.UTC)  # 22:30 in New York


def _url(thread: Thread, suffix: str = "messages/") -> str:
    return f"/api/v1/threads/{thread.pk}/{suffix}"


def test_threads_list_newest_activity_first_with_unread_and_preview(acme_sms, acme_csr):
    text_in("first", sid="SM" + "1" * 32)
    text_in("from the west", sid="SM" + "2" * 32, From=WEST_CUSTOMER)

    response = acme_csr.client().get("/api/v1/threads/")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["phone"] for row in rows] == [WEST_CUSTOMER, CUSTOMER]
    assert rows[0]["last_message_preview"] == "from the west" and rows[0]["unread"] == 1
    assert set(rows[0]) >= {
        "id",
        "contact",
        "phone",
        "last_message_at",
        "last_message_preview",
        "unread",
    }


def test_threads_filter_by_phone_contact_and_unread(acme_sms, acme_manager):
    text_in("hello", sid="SM" + "1" * 32)
    quiet = ensure_thread(acme_sms, WEST_CUSTOMER)
    client = acme_manager.client()

    by_phone = client.get("/api/v1/threads/", {"phone": "(212) 555-0142"}).json()["results"]
    unread = client.get("/api/v1/threads/", {"unread": "true"}).json()["results"]
    read = client.get("/api/v1/threads/", {"unread": "false"}).json()["results"]
    by_contact = client.get("/api/v1/threads/", {"contact": quiet.contact_id}).json()["results"]

    assert [row["phone"] for row in by_phone] == [CUSTOMER]
    assert [row["phone"] for row in unread] == [CUSTOMER]
    assert [row["id"] for row in read] == [quiet.pk] == [row["id"] for row in by_contact]


def test_read_clears_the_unread_count(acme_sms, acme_csr):
    text_in("hello")
    thread = Thread.objects.get()

    response = acme_csr.client().post(_url(thread, "read/"))

    assert response.status_code == 200 and response.json()["unread"] == 0
    thread.refresh_from_db()
    assert thread.unread == 0


def test_messages_newest_first_with_a_cursor_and_a_fixed_query_count(
    acme_sms, acme_csr, django_assert_max_num_queries
):
    for n in range(7):
        text_in(f"text {n}", sid=f"SM{n:032x}")
    thread = Thread.objects.get()
    client = acme_csr.client()

    with django_assert_max_num_queries(8):
        first = client.get(_url(thread), {"page_size": 3}).json()
    second = client.get(first["next"]).json()

    assert [m["body"] for m in first["results"]] == ["text 6", "text 5", "text 4"]
    assert [m["body"] for m in second["results"]] == ["text 3", "text 2", "text 1"]
    assert first["results"][0]["direction"] == "inbound" and first["results"][0]["sent_by"] is None


def test_the_query_count_does_not_grow_with_the_page(acme_sms, acme_csr, django_assert_num_queries):
    text_in("one", sid="SM" + "1" * 32)
    thread = Thread.objects.get()
    client = acme_csr.client()
    client.get(_url(thread))  # warm the auth caches

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        client.get(_url(thread))
    for n in range(20):
        text_in(f"more {n}", sid=f"SM{n + 100:032x}")
    with CaptureQueriesContext(connection) as many:
        client.get(_url(thread))

    assert len(many) == len(one)


@time_machine.travel(NOON_NY, tick=False)
def test_post_sends_through_the_gate_on_the_followups_queue(acme_thread, acme_csr, pushed):
    response = acme_csr.client().post(_url(acme_thread), {"body": "On our way"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["kind"], body["direction"]) == ("queued", "manual", "outbound")
    assert body["sent_by"] == acme_csr.user.pk and body["to_number"] == CUSTOMER
    assert pushed == [("followups", (body["id"],))]


@time_machine.travel(NOON_NY, tick=False)
def test_stop_then_send_is_422_and_nothing_sent_then_start_lets_it_through(
    acme_thread, acme_csr, pushed
):
    client = acme_csr.client()
    text_in("STOP", sid="SM" + "1" * 32)

    refused = client.post(_url(acme_thread), {"body": "Still interested?"}, format="json")

    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "recipient_opted_out"
    assert pushed == []
    assert Message.objects.get(direction="outbound").status == Status.BLOCKED

    text_in("START", sid="SM" + "2" * 32)
    sent = client.post(_url(acme_thread), {"body": "Still interested?"}, format="json")

    assert sent.status_code == 201 and len(pushed) == 1


@time_machine.travel(LATE_NY, tick=False)
def test_a_manual_send_in_the_recipients_quiet_hours_is_422_with_the_next_window(
    acme_thread, acme_csr, pushed
):
    response = acme_csr.client().post(_url(acme_thread), {"body": "Late"}, format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "quiet_hours"
    assert error["details"]["next_window_at"] == "2026-03-11T12:00:00+00:00"
    assert pushed == []


@time_machine.travel(LATE_NY, tick=False)
def test_a_reply_to_a_contact_who_just_wrote_goes_out_in_quiet_hours(acme_sms, acme_csr, pushed):
    text_in("are you still coming?")
    thread = Thread.objects.get()

    response = acme_csr.client().post(_url(thread), {"body": "Yes, 10 min"}, format="json")

    assert response.status_code == 201 and len(pushed) == 1


def test_an_empty_body_is_400_and_nothing_stored(acme_thread, acme_csr, pushed):
    response = acme_csr.client().post(_url(acme_thread), {"body": "   "}, format="json")

    assert response.status_code == 400
    assert not Message.objects.exists() and pushed == []


@time_machine.travel(NOON_NY, tick=False)
def test_idempotency_key_sends_once(acme_thread, acme_csr, pushed):
    client = acme_csr.client()
    key = {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}

    first = client.post(_url(acme_thread), {"body": "Once"}, format="json", **key)
    again = client.post(_url(acme_thread), {"body": "Once"}, format="json", **key)

    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert Message.objects.filter(direction="outbound").count() == 1 and len(pushed) == 1


@time_machine.travel(NOON_NY, tick=False)
def test_sends_are_rate_limited_per_company(acme_thread, acme_csr, pushed, settings):
    settings.ENABLE_RATE_LIMITING = True
    settings.RATE_LIMIT_SMS_SEND = "2/m"
    client = acme_csr.client()

    codes = [
        client.post(_url(acme_thread), {"body": f"n{n}"}, format="json").status_code
        for n in range(3)
    ]

    assert codes == [201, 201, 429]
    assert len(pushed) == 2


def test_a_sales_rep_may_not_use_threads(acme_thread, acme_rep):
    client = acme_rep.client()

    assert client.get("/api/v1/threads/").status_code == 403
    assert client.post(_url(acme_thread), {"body": "x"}, format="json").status_code == 403


@pytest.mark.parametrize(
    ("method", "suffix"), [("get", "messages/"), ("post", "messages/"), ("post", "read/")]
)
def test_the_outsider_gets_404_on_acmes_thread(acme_sms, globex_manager, pushed, method, suffix):
    text_in("private")
    thread = Thread.objects.get()

    response = getattr(globex_manager.client(), method)(
        _url(thread, suffix), {"body": "hi"}, format="json"
    )

    assert response.status_code == 404
    thread.refresh_from_db()
    assert thread.unread == 1 and thread.messages.count() == 1 and pushed == []


def test_the_outsider_lists_none_of_acmes_threads(acme_sms, globex_manager):
    text_in("private")

    assert globex_manager.client().get("/api/v1/threads/").json()["results"] == []


def test_an_opted_out_check_is_per_tenant(acme_thread, globex, acme_csr, pushed):
    record_consent(globex, phone=CUSTOMER, action="opt_out", source="keyword")

    with time_machine.travel(NOON_NY, tick=False):
        response = acme_csr.client().post(_url(acme_thread), {"body": "hi"}, format="json")

    assert response.status_code == 201
