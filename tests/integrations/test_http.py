"""The adapters' HTTP plumbing: one TLS context per process, not one per request."""

from __future__ import annotations

import io
import ssl

from integrations.callrail.client import CallRailClient
from integrations.deepgram.client import DeepgramTranscriber
from integrations.http import tls_context
from integrations.sandbox import scenarios
from integrations.shunya.client import ShunyaClient
from tests.calls.conftest import make_calls


def test_provider_requests_load_no_ca_bundle_once_the_context_exists(sandbox, monkeypatch):
    # given the process's context, built once (loading the CA bundle costs ~20 ms of CPU)
    shared = tls_context()
    assert tls_context() is shared and shared.verify_mode == ssl.CERT_REQUIRED
    made = make_calls(sandbox, 1, scenario="booked")[0]  # (the test's own request)
    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counting(self, *args, **kwargs):
        loads.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)

    # when every kind of adapter request runs: CallRail (its API and the recording),
    # Deepgram (through its SDK) and Shunya (request_json)
    callrail = CallRailClient.from_settings()
    callrail.get_call(made["id"])
    callrail.download_recording_to(made["id"], io.BytesIO(), max_bytes=10**6)
    DeepgramTranscriber.from_settings().transcribe_bytes(
        scenarios.audio_for(scenarios.SCENARIOS["booked"])
    )
    ShunyaClient.from_settings().submit_analysis(1, transcript="agent: hello")

    # then none built a context of its own
    assert loads == []
