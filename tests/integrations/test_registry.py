"""The inbox's source registry: filled by the apps that own the rows, read by the views,
the processing task, the reaper and the replay."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from calls.webhooks import callrail as callrail_webhooks
from calls.webhooks import shunya as shunya_webhooks
from integrations import inbox, services
from integrations.models import Provider, WebhookEvent
from messaging.webhooks import bland as bland_webhooks
from otto.webhooks import clerk as clerk_webhooks
from tests.integrations.fixtures import CLERK_SECRET, load, post_clerk

Status = WebhookEvent.Status


@pytest.fixture
def without(monkeypatch):
    """Unregister a provider's source for one test, as if its app were not installed."""

    def unregister(provider: str) -> None:
        monkeypatch.delitem(inbox._sources, provider)

    return unregister


def test_each_owning_app_registers_its_source():
    assert inbox.source_for(Provider.CALLRAIL) is callrail_webhooks.SOURCE
    assert inbox.source_for(Provider.SHUNYA) is shunya_webhooks.SOURCE
    assert inbox.source_for(Provider.CLERK) is clerk_webhooks.SOURCE
    assert inbox.source_for(Provider.BLAND) is bland_webhooks.SOURCE
    assert [source.provider for source in inbox.sources()] == sorted(
        [Provider.BLAND, Provider.CALLRAIL, Provider.CLERK, Provider.SHUNYA, Provider.TWILIO]
    )


def test_registering_the_same_source_again_is_harmless():
    inbox.register(clerk_webhooks.SOURCE)
    assert inbox.source_for(Provider.CLERK) is clerk_webhooks.SOURCE


def test_a_second_source_for_one_provider_is_refused():
    other = inbox.Source(
        provider=Provider.CLERK, headers=(), check=clerk_webhooks.check_delivery, handlers={}
    )
    with pytest.raises(ImproperlyConfigured, match="already registered"):
        inbox.register(other)
    assert inbox.source_for(Provider.CLERK) is clerk_webhooks.SOURCE


def test_an_unregistered_provider_has_no_source(without):
    without(Provider.SHUNYA)
    with pytest.raises(LookupError, match="shunya"):
        inbox.source_for(Provider.SHUNYA)


@pytest.mark.parametrize(
    ("provider", "url"),
    [
        (Provider.SHUNYA, "/webhooks/shunya"),
        (Provider.CLERK, "/webhooks/clerk"),
        (Provider.CALLRAIL, "/callrail/call.completed"),
        (Provider.BLAND, "/webhooks/bland"),
    ],
)
def test_the_view_of_an_unregistered_provider_answers_404_and_stores_nothing(
    db, client, without, provider, url
):
    without(provider)
    response = client.post(url, data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not WebhookEvent.objects.exists()


def _stored_clerk_event(client, settings) -> WebhookEvent:
    settings.CLERK_WEBHOOK_SECRET = CLERK_SECRET
    response = post_clerk(client, load("clerk", "organization.created"))
    assert response.status_code == 200
    return WebhookEvent.objects.get(pk=response.json()["id"])


def test_processing_leaves_an_unregistered_providers_event_alone(db, client, settings, without):
    event = _stored_clerk_event(client, settings)
    without(Provider.CLERK)

    assert services.process_event(event.pk) is None
    event.refresh_from_db()
    assert event.status == Status.RECEIVED and event.attempts == 0


def test_the_reaper_reaps_only_registered_sources(
    db, client, settings, without, django_capture_on_commit_callbacks
):
    event = _stored_clerk_event(client, settings)
    WebhookEvent.objects.filter(pk=event.pk).update(
        received_at=timezone.now() - datetime.timedelta(minutes=30)
    )

    without(Provider.CLERK)
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.reap_events()["enqueued"] == 0
    assert callbacks == []


def test_a_replay_of_an_unregistered_providers_event_is_refused(db, client, settings, without):
    event = _stored_clerk_event(client, settings)
    without(Provider.CLERK)
    with pytest.raises(services.ReplayRefused, match="no installed app"):
        services.replay_event(event)
