"""Twilio webhook signatures (``X-Twilio-Signature``), checked with twilio's RequestValidator.

Twilio signs the full URL it requested plus the sorted form params. Behind a proxy the
URL Django sees (``http://10.0.0.5:8080/...``) is not the one Twilio requested, so the URL
is rebuilt from ``settings.PUBLIC_BASE_URL`` and the request's path and query string.
A request carrying ``X-Twilio-Webhooks-Signature-Settings`` was signed with a SharedKey
and HMAC-SHA256; the validator picks the algorithm from that header (providers.md §2.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from twilio.request_validator import RequestValidator, get_signature_algorithm

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


def public_url(path_and_query: str) -> str:
    """The URL Twilio requested: ``PUBLIC_BASE_URL`` + ``/path?query``."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + path_and_query


def sign_twilio(url: str, params: Mapping[str, Any], auth_token: str) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for a form POST of ``params`` to ``url``."""
    signature: str = RequestValidator(auth_token).compute_signature(url, params)
    return signature


def check_twilio_signature(
    url: str,
    params: Mapping[str, Any],
    signature: str | None,
    *,
    auth_token: str | None = None,
    signature_settings: str | None = None,
) -> bool:
    """True when ``signature`` matches ``params`` posted to ``url``.

    ``params`` may be a dict or a Django ``QueryDict`` (repeated keys are signed too).
    ``auth_token`` defaults to ``settings.TWILIO_AUTH_TOKEN``.
    """
    token = auth_token or settings.TWILIO_AUTH_TOKEN
    if not signature or not token:
        return False
    algorithm = get_signature_algorithm(signature_settings)
    valid: bool = RequestValidator(token).validate(url, params, signature.strip(), algorithm)
    return valid


def check_twilio_request(request: HttpRequest, *, auth_token: str | None = None) -> bool:
    """Verify a form-encoded webhook Django received (inbound SMS, status callback)."""
    return check_twilio_signature(
        public_url(request.get_full_path()),
        request.POST,
        request.headers.get(SIGNATURE_HEADER),
        auth_token=auth_token,
        signature_settings=request.headers.get(SETTINGS_HEADER),
    )
