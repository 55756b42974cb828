"""Sandbox Google Geocoding: ``GET /maps/api/geocode/json?address=…&key=…``.

Deterministic for any address: coordinates are derived from a hash of the address and
fall inside the contiguous US; ``ROOFTOP`` when the address starts with a street number,
else ``APPROXIMATE``. Empty or obviously garbage input gets ``ZERO_RESULTS``; a key other
than the sandbox's gets ``REQUEST_DENIED``. Like Google, every answer is HTTP 200 and the
outcome is in ``status``. Tests can force the next status with
``state["google_maps"]["status"] = "OVER_QUERY_LIMIT"``.
"""

from __future__ import annotations

import hashlib
import re

from integrations.sandbox.config import CREDENTIALS
from integrations.sandbox.server import Request, Response, route

_GARBAGE = re.compile(r"^(?:[^a-z]*|asdf\w*|qwerty\w*|x+|test|n/?a|none|null|unknown)$")


def _status(status: str, message: str | None = None) -> Response:
    body: dict[str, object] = {"results": [], "status": status}
    if message:
        body["error_message"] = message
    return Response.json(body)


@route("GET", r"/maps/api/geocode/json", "google_maps.geocode")
def geocode(request: Request) -> Response:
    if request.arg("key") != CREDENTIALS["GOOGLE_MAPS_API_KEY"]:
        return _status("REQUEST_DENIED", "The provided API key is invalid. (sandbox)")
    forced = request.sandbox.state["google_maps"].pop("status", None)
    if forced:
        return _status(forced, f"Forced by the sandbox: {forced}")
    address = " ".join((request.arg("address") or "").split())
    if not address:
        return _status("INVALID_REQUEST", "Invalid request. Missing the 'address' parameter.")
    if _GARBAGE.match(address.lower()):
        return _status("ZERO_RESULTS")

    digest = hashlib.sha256(address.lower().encode()).digest()
    lat = 25.0 + int.from_bytes(digest[:4]) / 2**32 * 23.0  # 25..48 N
    lng = -123.0 + int.from_bytes(digest[4:8]) / 2**32 * 53.0  # 123..70 W
    number = re.match(r"^(\d+)\s", address)
    location_type = "ROOFTOP" if number else "APPROXIMATE"
    components = []
    if number:
        components.append(
            {
                "long_name": number.group(1),
                "short_name": number.group(1),
                "types": ["street_number"],
            }
        )
    formatted = address.title().rstrip(".,") + ", USA"
    delta = 0.0015 if number else 0.05
    result = {
        "address_components": components,
        "formatted_address": formatted,
        "geometry": {
            "location": {"lat": round(lat, 7), "lng": round(lng, 7)},
            "location_type": location_type,
            "viewport": {
                "northeast": {"lat": round(lat + delta, 7), "lng": round(lng + delta, 7)},
                "southwest": {"lat": round(lat - delta, 7), "lng": round(lng - delta, 7)},
            },
        },
        "place_id": "SandboxPlace" + digest[8:20].hex(),
        "types": ["street_address"] if number else ["locality", "political"],
    }
    return Response.json({"results": [result], "status": "OK"})
