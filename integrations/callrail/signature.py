"""CallRail webhook signatures: base64 HMAC-SHA1 of the raw body with the company's key."""

import base64
import hashlib
import hmac


def sign_callrail(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha1).digest()).decode()


def check_callrail_signature(body: bytes, signature: str | None, key: str) -> bool:
    """True when ``signature`` (the ``Signature`` header) matches ``body`` under ``key``."""
    if not signature or not key:
        return False
    return hmac.compare_digest(sign_callrail(body, key), signature.strip())
