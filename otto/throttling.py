"""Per-user and per-tenant rate limits, counted atomically in Redis by django-ratelimit.

DRF's own throttles keep a list of timestamps per key and rewrite it on every request:
two workers racing each other both fit under the limit. django-ratelimit increments one
counter per fixed window (``INCR``), which is atomic.

When the cache cannot be reached the throttles **fail open**: the request is served,
and the failure is logged and counted (``otto_rate_limit_errors_total``). Rate limits
protect the API from a noisy client; taking the whole API down because Redis blinked
would do far more harm than a minute without limits (docs/auth.md).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from otto.metrics import RATE_LIMIT_ERRORS

logger = logging.getLogger(__name__)


class RateLimitThrottle(BaseThrottle):
    scope = ""
    rate_setting = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def key(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        if not settings.ENABLE_RATE_LIMITING:
            return True
        value = self.key(request)
        if value is None:
            return True
        try:
            usage = get_usage(
                request,
                group=f"api-{self.scope}",
                key=lambda group, request: value,
                rate=getattr(settings, self.rate_setting),
                method=get_usage.ALL,
                increment=True,
            )
        except Exception as exc:  # the cache client's errors vary by backend
            RATE_LIMIT_ERRORS.labels(scope=self.scope).inc()
            logger.warning("rate limit %s not checked, request served: %r", self.scope, exc)
            return True
        if usage is None:
            return True
        if usage["should_limit"]:
            self._wait = max(float(usage["time_left"]), 1.0)
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


class UserRateThrottle(RateLimitThrottle):
    """``RATE_LIMIT_USER`` per signed-in user."""

    scope = "user"
    rate_setting = "RATE_LIMIT_USER"

    def key(self, request: Request) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return f"user:{user.pk}"


class TenantRateThrottle(RateLimitThrottle):
    """``RATE_LIMIT_TENANT`` shared by everyone in one company."""

    scope = "tenant"
    rate_setting = "RATE_LIMIT_TENANT"

    def key(self, request: Request) -> str | None:
        company = getattr(request, "company", None)
        return None if company is None else f"company:{company.pk}"
