"""CallRail's signature against CallRail's own published vector (providers.md §1.6).

A round trip through our own signer cannot catch a wrong algorithm, key encoding or output
encoding: both sides would be wrong together. This vector is the vendor's answer: the JSON
body from the API v3 docs' "Validating Payloads" section, signed with the docs' key.
"""

from __future__ import annotations

import hashlib

from integrations.callrail.signature import check_callrail_signature, sign_callrail
from tests.integrations.fixtures import HERE

VECTOR_KEY = "072e77e426f92738a72fe23c4d1953b4"
VECTOR_SIGNATURE = "UZAHbUdfm3GqL7qzilGozGzWV64="
# The body is signed as bytes: a re-serialised or re-indented copy would not verify, so the
# fixture is pinned by its length and hash before anything is asserted about the signature.
VECTOR_LENGTH = 2279
VECTOR_SHA256 = "4c08427068fb350b43abc01ec131501ca0548945d483886f1a48c9937bef961a"


def vector_body() -> bytes:
    return (HERE / "callrail" / "docs_validating_payloads.json").read_bytes()


def test_the_fixture_is_the_docs_body_byte_for_byte():
    body = vector_body()

    assert len(body) == VECTOR_LENGTH
    assert hashlib.sha256(body).hexdigest() == VECTOR_SHA256


def test_signing_the_docs_body_with_the_docs_key_gives_the_docs_signature():
    body = vector_body()
    assert hashlib.sha256(body).hexdigest() == VECTOR_SHA256

    assert sign_callrail(body, VECTOR_KEY) == VECTOR_SIGNATURE
    assert check_callrail_signature(body, VECTOR_SIGNATURE, VECTOR_KEY)


def test_the_docs_signature_does_not_verify_a_changed_body_or_key():
    body = vector_body()

    assert not check_callrail_signature(body + b"\n", VECTOR_SIGNATURE, VECTOR_KEY)
    assert not check_callrail_signature(
        body.replace(b"Kaylah", b"Kayla "), VECTOR_SIGNATURE, VECTOR_KEY
    )
    assert not check_callrail_signature(body, VECTOR_SIGNATURE, VECTOR_KEY.upper())
