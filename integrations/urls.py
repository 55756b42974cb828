"""Webhook endpoints (no JWT; each verifies its provider's signature)."""

urlpatterns: list = []
