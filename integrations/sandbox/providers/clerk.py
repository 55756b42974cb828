"""A Clerk-style session-token issuer: the JWKS and a token-minting endpoint.

``iss`` is ``<sandbox>/clerk``, which is what ``CLERK_ISSUER`` becomes with ``SANDBOX`` on,
so the app verifies sandbox tokens exactly as it verifies Clerk's: RS256, ``kid``, JWKS.

- ``GET /clerk/.well-known/jwks.json``: the public keys.
- ``POST /clerk/tokens``: ``{"sub", "org_id", "org_role", "email", "name", "version": "v1"|"v2",
  "lifetime": seconds, "azp", "sid", "claims": {...}, "remove": [...]}`` returns
  ``{"token": "<jwt>", "kid": ..., "claims": {...}}``. ``claims`` overrides any claim (an
  expired ``exp``, a wrong ``iss``) and ``remove`` drops claims, for the attack tests.
- ``POST /_sandbox/clerk/rotate``: a new signing key replaces the old one in the JWKS.

The key lives for the life of the process, not in the per-test state, so ``reset`` does
not change it (a changed key between tests would only exercise the app's refetch cool-down).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations.sandbox.server import Request, Response, route

_lock = threading.Lock()
_keys: list[tuple[str, rsa.RSAPrivateKey]] = []


def _new_key() -> tuple[str, rsa.RSAPrivateKey]:
    return f"ins_sandbox_{secrets.token_hex(6)}", rsa.generate_private_key(65537, 2048)


def current_key() -> tuple[str, rsa.RSAPrivateKey]:
    with _lock:
        if not _keys:
            _keys.append(_new_key())
        return _keys[-1]


def rotate() -> str:
    """Replace the signing key; tokens signed with the old one stop verifying."""
    kid, key = _new_key()
    with _lock:
        _keys[:] = [(kid, key)]
    return kid


def jwks() -> dict[str, Any]:
    current_key()
    with _lock:
        keys = list(_keys)
    body = []
    for kid, key in keys:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        body.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
    return {"keys": body}


def session_claims(issuer: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Clerk's default session claims (v2 unless ``version`` is ``v1``) for ``spec``."""
    now = int(time.time())
    lifetime = int(spec.get("lifetime", 60))
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": spec.get("sub") or f"user_{secrets.token_hex(8)}",
        "sid": spec.get("sid") or f"sess_{secrets.token_hex(8)}",
        "jti": secrets.token_hex(10),
        "iat": now,
        "nbf": now - 5,
        "exp": now + lifetime,
    }
    if spec.get("azp"):
        claims["azp"] = spec["azp"]
    # Not default Clerk claims: a real instance adds them with a session-token template.
    for name in ("email", "name"):
        if spec.get(name):
            claims[name] = spec[name]
    org_id, role = spec.get("org_id"), spec.get("org_role")
    if spec.get("version", "v2") == "v1":
        if org_id:
            claims["org_id"] = org_id
            claims["org_slug"] = spec.get("org_slug") or org_id
            claims["org_role"] = role if not role or role.startswith("org:") else f"org:{role}"
    else:
        claims["v"] = 2
        claims["fva"] = [0, -1]
        if org_id:
            rol = (role or "").removeprefix("org:")
            claims["o"] = {"id": org_id, "slg": spec.get("org_slug") or org_id, "rol": rol}
    claims.update(spec.get("claims") or {})
    for name in spec.get("remove") or []:
        claims.pop(name, None)
    return claims


@route("GET", r"/clerk/\.well-known/jwks\.json", "clerk.jwks")
def jwks_endpoint(request: Request) -> Response:
    return Response.json(jwks())


@route("POST", r"/clerk/tokens", "clerk.tokens")
def mint_token(request: Request) -> Response:
    try:
        spec = request.json() or {}
    except ValueError:
        return Response.error(400, "body must be JSON")
    if not isinstance(spec, dict) or spec.get("version", "v2") not in ("v1", "v2"):
        return Response.error(400, 'expected a JSON object with version "v1" or "v2"')
    claims = session_claims(f"{request.base_url}/clerk", spec)
    kid, key = current_key()
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
    return Response.json({"token": token, "kid": kid, "claims": claims}, 201)


@route("POST", r"/_sandbox/clerk/rotate", "_sandbox.clerk.rotate")
def rotate_endpoint(request: Request) -> Response:
    return Response.json({"kid": rotate()})
