"""The geocoding client and its cache against the sandbox."""

from __future__ import annotations

import pytest

from integrations.errors import ProviderError
from integrations.google_maps.client import GeocodingClient, cache_key, normalise_address


def geocode(address: str):
    return GeocodingClient.from_settings().geocode(address)


def test_street_address_geocodes_to_rooftop(sandbox):
    result = geocode("42 Maple Street, Springfield, IL")

    assert result.precision == "ROOFTOP"
    assert result.formatted_address == "42 Maple Street, Springfield, Il, USA"
    assert 25 <= result.lat <= 48 and -123 <= result.lng <= -70
    request = sandbox.recorded("google_maps")[0]
    assert request["query"]["address"] == ["42 Maple Street, Springfield, IL"]
    assert request["query"]["key"] == ["AIzaSandboxKey000000000000000000000000"]


def test_results_are_deterministic_and_differ_by_address(sandbox):
    first = GeocodingClient.from_settings()._lookup("1 Main St, Austin, TX")
    again = GeocodingClient.from_settings()._lookup("1 Main St, Austin, TX")
    other = GeocodingClient.from_settings()._lookup("2 Main St, Austin, TX")

    assert first == again
    assert (first.lat, first.lng) != (other.lat, other.lng)


def test_place_without_street_number_is_approximate(sandbox):
    assert geocode("Springfield, IL").precision == "APPROXIMATE"


def test_second_identical_lookup_is_served_from_the_cache(sandbox):
    first = geocode("42 Maple Street, Springfield")
    second = geocode("  42 maple street ,  springfield. ")

    assert second == first
    assert len(sandbox.recorded("google_maps")) == 1


def test_zero_results_is_none_and_cached(sandbox):
    assert geocode("asdfasdf") is None
    assert geocode("ASDFASDF") is None

    assert len(sandbox.recorded("google_maps")) == 1


def test_blank_address_makes_no_request(sandbox):
    assert geocode("  , ") is None
    assert sandbox.recorded("google_maps") == []


def test_normalised_addresses_share_a_cache_key():
    assert normalise_address(" 42  Maple St. ,Springfield ") == "42 maple st, springfield"
    assert cache_key("42 Maple St, Springfield") == cache_key("42 maple st ,springfield.")
    assert cache_key("42 Maple St") != cache_key("43 Maple St")


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        ("OVER_QUERY_LIMIT", False),
        ("UNKNOWN_ERROR", False),
        ("INVALID_REQUEST", True),
        ("OVER_DAILY_LIMIT", True),
    ],
)
def test_api_statuses_are_mapped(sandbox, status, permanent):
    sandbox.state["google_maps"]["status"] = status

    with pytest.raises(ProviderError) as caught:
        geocode("42 Maple Street")

    assert caught.value.permanent is permanent
    assert status in caught.value.detail
    assert len(sandbox.recorded("google_maps")) == 1  # the SDK did not retry on its own


def test_errors_are_not_cached(sandbox):
    sandbox.state["google_maps"]["status"] = "UNKNOWN_ERROR"
    with pytest.raises(ProviderError):
        geocode("42 Maple Street")

    assert geocode("42 Maple Street").precision == "ROOFTOP"


def test_bad_key_is_request_denied_and_permanent(sandbox, settings):
    settings.GOOGLE_MAPS_API_KEY = "AIzaSomeoneElsesKey"

    with pytest.raises(ProviderError) as caught:
        geocode("42 Maple Street")

    assert caught.value.permanent is True and "REQUEST_DENIED" in caught.value.detail


def test_key_without_aiza_prefix_is_a_configuration_error(sandbox, settings):
    settings.GOOGLE_MAPS_API_KEY = "not-a-google-key"

    with pytest.raises(ProviderError) as caught:
        geocode("42 Maple Street")

    assert caught.value.permanent is True and "invalid API key" in caught.value.detail


def test_http_429_is_transient(sandbox):
    sandbox.inject("google_maps.geocode", "429", count=1)

    with pytest.raises(ProviderError) as caught:
        geocode("42 Maple Street")

    assert caught.value.permanent is False and caught.value.status == 429


def test_one_500_is_retried_by_the_sdk(sandbox):
    sandbox.inject("google_maps.geocode", "500", count=1)

    assert geocode("42 Maple Street").precision == "ROOFTOP"
    assert len(sandbox.recorded("google_maps")) == 2


def test_persistent_500_is_transient(sandbox):
    sandbox.inject("google_maps.geocode", "500", count=50)

    with pytest.raises(ProviderError) as caught:
        geocode("42 Maple Street")

    assert caught.value.permanent is False


def test_timeout_is_transient(sandbox):
    sandbox.inject("google_maps.geocode", "timeout", count=1, delay_seconds=3)

    with pytest.raises(ProviderError) as caught:
        geocode("42 Maple Street")

    assert caught.value.permanent is False and "timed out" in caught.value.detail


def test_malformed_body_is_a_clear_error(sandbox):
    sandbox.inject("google_maps.geocode", "malformed", count=1)

    with pytest.raises(ProviderError) as caught:
        geocode("42 Maple Street")

    assert caught.value.permanent is True and "malformed" in caught.value.detail
