"""The adapters sit below the core (DESIGN §2): they reach metrics and the request id only
through the hooks ``otto.apps`` wires at start-up."""

from __future__ import annotations

import pytest

from integrations import errors, http
from otto import metrics
from otto.logging import bind_request_id


def test_a_provider_call_is_counted_and_timed_by_the_core():
    calls = metrics.PROVIDER_CALLS
    before_ok = calls.value(provider="hooktest", operation="ping", outcome="ok")
    before_transient = calls.value(provider="hooktest", operation="ping", outcome="transient")

    with errors.track("hooktest", "ping"):
        pass
    with pytest.raises(errors.ProviderError), errors.track("hooktest", "ping"):
        raise errors.ProviderError("hooktest", "busy", permanent=False)

    assert calls.value(provider="hooktest", operation="ping", outcome="ok") == before_ok + 1
    assert (
        calls.value(provider="hooktest", operation="ping", outcome="transient")
        == before_transient + 1
    )
    assert metrics.PROVIDER_LATENCY.count(provider="hooktest", operation="ping") >= 2


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
