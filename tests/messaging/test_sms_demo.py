"""``sandbox_sms --demo`` (``make sms``) against a live server: a thread, STOP, a refused send."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from integrations.sandbox.management.commands.sandbox_sms import DEMO_CUSTOMER
from integrations.sandbox.management.commands.sandbox_sms import Command as SandboxSms
from messaging import selectors
from messaging.models import Message
from otto import queues


@pytest.fixture
def live_app(acme_sms, sandbox, clerk, live_server, settings, monkeypatch):
    """The app on a live server, its tasks run inline on commit (the worker's job)."""
    settings.PUBLIC_BASE_URL = live_server.url
    monkeypatch.setattr(
        queues, "_push", lambda queue, path, ids, *_, **__: queues.TASKS[path](*ids)
    )
    return acme_sms


def _demo(capsys) -> str:
    call_command(SandboxSms(), "--company", "acme", "--demo", "--wait", "10")
    return capsys.readouterr().out


def test_the_demo_shows_a_thread_stop_and_a_refused_send(live_app, sandbox, capsys):
    out = _demo(capsys)

    assert "HTTP 201: queued" in out
    assert "→ outbound delivered Yes, see you Tuesday at 10." in out
    assert "state opt_out, source keyword" in out
    assert "HTTP 422 recipient_opted_out" in out
    assert selectors.is_opted_out(live_app, DEMO_CUSTOMER)
    refused = Message.objects.filter(status="blocked").get()
    assert refused.status_reason == "recipient_opted_out"
    assert len(sandbox.recorded("twilio.messages.create")) == 1

    # and it runs again: the opted-out number texts START first
    again = _demo(capsys)

    assert "opted out in an earlier run" in again and "HTTP 422 recipient_opted_out" in again


def test_the_demo_says_when_the_app_does_not_answer(acme_sms, sandbox, clerk, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"

    with pytest.raises(CommandError):
        call_command(SandboxSms(), "--company", "acme", "--demo", "--wait", "1")
