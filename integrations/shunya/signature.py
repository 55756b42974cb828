"""Shunya (UWC) webhook signatures.

``X-Shunya-Signature`` is the hex HMAC-SHA256 of ``f"{ts}." + raw body`` under
``UWC_HMAC_SECRET``, and ``X-Shunya-Timestamp`` is ``ts`` in epoch milliseconds. Binding
the timestamp into the MAC and bounding its age (±300 s) stops replays of an old delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

SIGNATURE_HEADER = "X-Shunya-Signature"
TIMESTAMP_HEADER = "X-Shunya-Timestamp"
TOLERANCE_SECONDS = 300

_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EPOCH_MS = re.compile(r"^\d{10,16}$")


def compute_shunya_signature(body: bytes, timestamp: str, secret: str) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def sign_shunya(body: bytes, secret: str, *, now: float | None = None) -> dict[str, str]:
    """The headers Shunya sends with ``body`` (used by the sandbox and by tests)."""
    timestamp = str(int((time.time() if now is None else now) * 1000))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: compute_shunya_signature(body, timestamp, secret),
    }


def check_shunya_signature(
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    secret: str,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> bool:
    """True when the headers sign ``body`` under ``secret`` and ``timestamp`` is fresh.

    Missing, truncated or non-hex signatures and non-numeric timestamps are rejected
    before any MAC is computed; the comparison itself is constant-time.
    """
    if not secret or not signature or not timestamp:
        return False
    signature = signature.strip().lower()
    timestamp = timestamp.strip()
    if not _HEX_SHA256.match(signature) or not _EPOCH_MS.match(timestamp):
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp) / 1000) > tolerance:
        return False  # stale (a replay) or from the future (a skewed or forged clock)
    expected = compute_shunya_signature(body, timestamp, secret)
    return hmac.compare_digest(expected, signature)
