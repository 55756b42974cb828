"""Webhook endpoints (no JWT; each verifies its provider's signature)."""

from django.urls import URLPattern, path

from integrations import views

urlpatterns: list[URLPattern] = [
    path("webhooks/clerk", views.clerk_webhook, name="webhook-clerk"),
    path("webhooks/shunya", views.shunya_webhook, name="webhook-shunya"),
    path("webhooks/bland", views.bland_webhook, name="webhook-bland"),
    path("sms/twilio-webhook", views.twilio_inbound_webhook, name="webhook-twilio-inbound"),
    path("sms/twilio-status", views.twilio_status_webhook, name="webhook-twilio-status"),
    path(
        "callrail/call.completed",
        views.callrail_webhook,
        {"event_type": "call.completed"},
        name="webhook-callrail-call-completed",
    ),
    path(
        "callrail/call.modified",
        views.callrail_webhook,
        {"event_type": "call.modified"},
        name="webhook-callrail-call-modified",
    ),
]
