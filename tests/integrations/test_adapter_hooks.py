"""The adapters sit below the core (DESIGN §2): they reach metrics and the request id only
through the hooks ``otto.apps`` wires at start-up."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from integrations import errors, http
from otto.logging import bind_request_id


def _sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_provider_call_is_counted_and_timed_by_the_core():
    requests = "otto_provider_requests_total"
    before_ok = _sample(requests, provider="hooktest", outcome="ok")
    before_transient = _sample(requests, provider="hooktest", outcome="transient")
    before_timed = _sample("otto_provider_request_duration_seconds_count", provider="hooktest")

    with errors.track("hooktest", "ping"):
        pass
    with pytest.raises(errors.ProviderError), errors.track("hooktest", "ping"):
        raise errors.ProviderError("hooktest", "busy", permanent=False)

    assert _sample(requests, provider="hooktest", outcome="ok") == before_ok + 1
    assert _sample(requests, provider="hooktest", outcome="transient") == before_transient + 1
    assert (
        _sample("otto_provider_request_duration_seconds_count", provider="hooktest")
        == before_timed + 2
    )


def test_a_failing_observer_never_fails_the_provider_call(monkeypatch):
    def broken(*args):
        raise RuntimeError("metrics backend down")

    monkeypatch.setattr(errors, "_observers", [broken])
    with errors.track("hooktest", "ping"):
        result = "answered"
    assert result == "answered"


def test_outbound_requests_carry_the_current_request_id():
    token = bind_request_id("req-hook-1")
    try:
        assert http.outbound_request_id() == "req-hook-1"
    finally:
        bind_request_id(None, token)


def test_outside_a_request_a_fresh_id_is_sent_each_time():
    token = bind_request_id(None)  # whatever an earlier test left bound
    try:
        first, second = http.outbound_request_id(), http.outbound_request_id()
    finally:
        bind_request_id(None, token)
    assert first and second and first != second
