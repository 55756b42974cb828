"""The admin: threads with their messages, the read-only ledger, the manual opt-out action."""

from __future__ import annotations

from django.urls import reverse

from messaging import selectors
from messaging.models import ConsentEvent, Thread
from tests.messaging.conftest import CUSTOMER, text_in


def test_a_thread_page_shows_its_messages(acme_sms, staff_client):
    text_in("Is Tuesday OK?")
    thread = Thread.objects.get()

    page = staff_client.get(reverse("admin:messaging_thread_change", args=[thread.pk]))

    assert page.status_code == 200 and b"Is Tuesday OK?" in page.content


def test_the_opt_out_action_appends_an_admin_event(acme_sms, staff_client):
    text_in("hello")
    thread = Thread.objects.get()

    staff_client.post(
        reverse("admin:messaging_thread_changelist"),
        {"action": "opt_out", "_selected_action": [thread.pk]},
    )

    event = ConsentEvent.objects.get()
    assert (event.source, event.actor.username) == ("admin", "ops")
    assert selectors.is_opted_out(acme_sms, CUSTOMER)


def test_the_ledger_cannot_be_changed_in_the_admin(acme_sms, staff_client):
    text_in("STOP")
    event = ConsentEvent.objects.get()

    assert staff_client.get(reverse("admin:messaging_consentevent_add")).status_code == 403
    delete = reverse("admin:messaging_consentevent_delete", args=[event.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert ConsentEvent.objects.get().action == "opt_out"
