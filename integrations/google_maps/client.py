"""Google geocoding through the official ``googlemaps`` client, with a result cache.

Every lookup is billed, and the same customer address comes up again and again (repeat
callers, reschedules), so answers are cached in Django's cache under a hash of the
normalised address: a hit for 30 days, a ZERO_RESULTS for one day (a new street may
appear). Errors are never cached.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import asdict, dataclass
from typing import Any

import googlemaps
import googlemaps.exceptions as gm_errors
from django.conf import settings
from django.core.cache import cache

from integrations.errors import ProviderError, track

logger = logging.getLogger(__name__)

PROVIDER = "google_maps"
CACHE_TTL = 30 * 24 * 3600
ZERO_RESULTS_TTL = 24 * 3600
CACHE_VERSION = "v1"  # bump when GeocodeResult's shape changes
_NO_RESULT = {"zero_results": True}

TRANSIENT_STATUSES = {"OVER_QUERY_LIMIT", "UNKNOWN_ERROR"}
# OVER_DAILY_LIMIT is a billing or key problem, not a rate: it will not pass by retrying.


@dataclass(frozen=True)
class GeocodeResult:
    lat: float
    lng: float
    formatted_address: str
    precision: str  # location_type: ROOFTOP, RANGE_INTERPOLATED, GEOMETRIC_CENTER, APPROXIMATE
    place_id: str | None = None


def normalise_address(address: str) -> str:
    """Lower case, no periods, one space, ", " between parts: "42  Maple St.," -> "42 maple st"."""
    text = re.sub(r"\s*,\s*", ", ", address.lower().replace(".", ""))
    return re.sub(r"\s+", " ", text).strip(" .,;")


def cache_key(address: str) -> str:
    digest = hashlib.sha256(normalise_address(address).encode()).hexdigest()[:40]
    return f"otto:geocode:{CACHE_VERSION}:{digest}"


@functools.lru_cache(maxsize=4)
def _sdk_client(key: str | None, base_url: str, timeout: float) -> googlemaps.Client:
    # The SDK holds a requests.Session; one per configuration keeps connections warm.
    return googlemaps.Client(
        key=key,
        base_url=base_url,
        timeout=timeout,
        # The pipeline has its own backoff: fail fast instead of sleeping up to 60 s here.
        retry_over_query_limit=False,
        retry_timeout=max(1, int(timeout)),
    )


class GeocodingClient:
    def __init__(self, *, api_key: str | None, base_url: str, timeout: float = 10.0) -> None:
        try:
            self.sdk = _sdk_client(api_key, base_url.rstrip("/"), timeout)
        except ValueError as exc:  # googlemaps requires a key that starts with "AIza"
            raise ProviderError(
                PROVIDER, f"invalid API key configuration: {exc}", permanent=True
            ) from exc

    @classmethod
    def from_settings(cls) -> GeocodingClient:
        return cls(
            api_key=settings.GOOGLE_MAPS_API_KEY,
            base_url=settings.GOOGLE_MAPS_BASE_URL,
            timeout=float(settings.PROVIDER_TIMEOUTS["google_maps"]),
        )

    def geocode(self, address: str) -> GeocodeResult | None:
        """The best match for ``address``, or None when Google finds nothing."""
        if not normalise_address(address):
            return None
        key = cache_key(address)
        cached = _cache_get(key)
        if cached is not None:
            return None if cached == _NO_RESULT else GeocodeResult(**cached)
        result = self._lookup(address)
        if result is None:
            _cache_set(key, _NO_RESULT, ZERO_RESULTS_TTL)
        else:
            _cache_set(key, asdict(result), CACHE_TTL)
        return result

    def _lookup(self, address: str) -> GeocodeResult | None:
        with track(PROVIDER, "geocode"):
            try:
                results = self.sdk.geocode(address)
            except gm_errors.ApiError as exc:
                transient = exc.status in TRANSIENT_STATUSES
                raise ProviderError(
                    PROVIDER,
                    f"{exc.status}: {exc.message or ''}".strip(),
                    permanent=not transient,
                    status=429 if exc.status == "OVER_QUERY_LIMIT" else None,
                ) from exc
            except gm_errors.HTTPError as exc:
                raise ProviderError.from_status(PROVIDER, exc.status_code, str(exc)) from exc
            except gm_errors.Timeout as exc:
                # Raised for a timed-out request and when 5xx retries exhaust retry_timeout.
                raise ProviderError(PROVIDER, "timed out", permanent=False) from exc
            except gm_errors.TransportError as exc:
                raise ProviderError(PROVIDER, f"transport error: {exc}", permanent=False) from exc
            except (ValueError, KeyError) as exc:
                # A body that is not JSON, or JSON without "status".
                raise ProviderError(
                    PROVIDER, f"malformed response body: {type(exc).__name__}", permanent=True
                ) from exc
            return _first(results)


def _first(results: Any) -> GeocodeResult | None:
    if not results:
        return None
    try:
        best = results[0]
        geometry = best["geometry"]
        return GeocodeResult(
            lat=float(geometry["location"]["lat"]),
            lng=float(geometry["location"]["lng"]),
            formatted_address=str(best.get("formatted_address") or ""),
            precision=str(geometry.get("location_type") or "APPROXIMATE"),
            place_id=best.get("place_id"),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ProviderError(PROVIDER, f"unexpected result shape: {exc!r}", permanent=True) from exc


def _cache_get(key: str) -> dict[str, Any] | None:
    # The cache saves money, it is not needed for correctness: an outage costs a lookup.
    try:
        cached: dict[str, Any] | None = cache.get(key)  # only _cache_set writes these keys
        return cached
    except Exception:
        logger.warning("geocode cache read failed", exc_info=True)
        return None


def _cache_set(key: str, value: dict[str, Any], ttl: int) -> None:
    try:
        cache.set(key, value, ttl)
    except Exception:
        logger.warning("geocode cache write failed", exc_info=True)
