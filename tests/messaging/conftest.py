"""Acme with a Twilio sending number, and signed Twilio deliveries posted to the app."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client

from integrations import services as inbox_services
from integrations.models import Provider, WebhookEvent
from integrations.sandbox.config import CREDENTIALS
from integrations.twilio.signature import sign_twilio
from messaging.models import Thread
from messaging.services import ensure_thread
from otto.models import PhoneNumber, User
from tests.calls.conftest import (  # noqa: F401 -- fixtures shared with the recovery tests
    acme_callrail,
    run_tasks,
    worker,
)
from tests.integrations.conftest import Outbox

TOKEN = CREDENTIALS["TWILIO_AUTH_TOKEN"]
ACME_NUMBER = CREDENTIALS["TWILIO_FROM_NUMBER"]
PUBLIC = "https://otto.example.com"
CUSTOMER = "+12125550142"  # New York
WEST_CUSTOMER = "+14155550142"  # San Francisco
INBOUND = "/sms/twilio-webhook"
STATUS = "/sms/twilio-status"


@pytest.fixture
def twilio(sandbox, settings):
    """The sandbox's Twilio account, with the app's public URL fixed for signatures."""
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.ENABLE_RATE_LIMITING = False
    return sandbox


@pytest.fixture
def outbox(sandbox) -> Outbox:
    box = Outbox()
    sandbox.outbound = box
    return box


@pytest.fixture
def pushed(monkeypatch) -> list[tuple[str, tuple]]:
    """The send tasks enqueued on commit (the worker is tested in test_sending)."""
    from messaging import services

    calls: list[tuple[str, tuple]] = []
    monkeypatch.setattr(services, "enqueue", lambda queue, func, *ids: calls.append((queue, ids)))
    return calls


@pytest.fixture
def staff_client(client, db):
    """The admin, signed in as a superuser (``ops``)."""
    admin = User.objects.create_superuser("ops", "ops@example.com", "pw")
    client.force_login(admin)
    return client


@pytest.fixture
def acme_sms(acme, twilio):
    PhoneNumber.objects.create(company=acme, number=ACME_NUMBER, kind=PhoneNumber.Kind.SENDING)
    acme.twilio_number = ACME_NUMBER
    acme.save(update_fields=["twilio_number"])
    return acme


@pytest.fixture
def acme_thread(acme_sms) -> Thread:
    return ensure_thread(acme_sms, CUSTOMER)


def inbound_params(body: str = "Hi", *, sid: str = "SM" + "a" * 32, **extra: str) -> dict:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": CREDENTIALS["TWILIO_ACCOUNT_SID"],
        "From": CUSTOMER,
        "To": ACME_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def post_signed(path: str, params: dict, *, token: str = TOKEN, url: str | None = None):
    """POST ``params`` as Twilio does, signed by twilio's own RequestValidator."""
    signature = sign_twilio(url or PUBLIC + path, params, token)
    return Client().post(
        path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )


def process_received() -> list[str | None]:
    """Run what the inbox would have enqueued on commit."""
    events = WebhookEvent.objects.filter(
        provider=Provider.TWILIO, status=WebhookEvent.Status.RECEIVED
    ).order_by("pk")
    return [inbox_services.process_event(event.pk) for event in events]


def text_in(body: str, **extra: str):
    response = post_signed(INBOUND, inbound_params(body, **extra))
    assert response.status_code == 200, response.content
    process_received()
    return response
