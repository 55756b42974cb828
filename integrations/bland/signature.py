"""Bland webhook signatures: ``X-Webhook-Signature`` = hex HMAC-SHA256(secret, body).

Bland documents no timestamp, so there is no replay window; the webhook inbox's dedupe
key (the call id) is what makes a replayed delivery harmless. Bland's own example signs
``JSON.stringify(body)``; we verify the raw bytes first and only then a compact
re-serialisation, because byte-exactness is not confirmed (providers.md §6.3).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

SIGNATURE_HEADER = "X-Webhook-Signature"

_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sign_bland(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_bland_signature(body: bytes, signature: str | None, secret: str) -> bool:
    """True when ``signature`` signs ``body`` (raw, or compactly re-serialised) under ``secret``."""
    if not secret or not signature:
        return False
    signature = signature.strip().lower()
    if not _HEX_SHA256.match(signature):
        return False  # truncated or garbled: not worth a MAC
    if hmac.compare_digest(sign_bland(body, secret), signature):
        return True
    try:
        compact = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()
    except (ValueError, UnicodeDecodeError):
        return False
    return compact != body and hmac.compare_digest(sign_bland(compact, secret), signature)
