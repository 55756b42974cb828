"""The Deepgram client (official SDK) against the sandbox's ``/v1/listen``."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations.deepgram.client import DeepgramTranscriber
from integrations.errors import ProviderError
from integrations.sandbox import scenarios
from integrations.sandbox.config import CREDENTIALS

BOOKED = scenarios.SCENARIOS["booked"]


def transcriber(**options) -> DeepgramTranscriber:
    return DeepgramTranscriber.from_settings(**options)


def assert_is_the_script(result, scenario: scenarios.Scenario) -> None:
    assert [u.text for u in result.utterances] == [u.text for u in scenario.utterances]
    assert [u.speaker for u in result.utterances] == [u.speaker for u in scenario.utterances]
    assert [(u.start, u.end) for u in result.utterances] == [
        (u.start, u.end) for u in scenario.utterances
    ]
    assert result.duration == pytest.approx(scenario.duration)
    assert result.text.startswith(scenario.utterances[0].text)


def test_transcribes_bytes_with_the_products_options(sandbox):
    result = transcriber().transcribe_bytes(scenarios.audio_for(BOOKED))

    assert_is_the_script(result, BOOKED)
    assert result.request_id and result.speakers == [0, 1]
    assert result.model == "sandbox-simulated"  # never passed off as Deepgram's own model
    assert result.language == "en"
    assert all(0 < u.confidence <= 1 for u in result.utterances)
    [request] = sandbox.recorded("deepgram.listen")
    assert request["headers"]["authorization"] == f"Token {CREDENTIALS['DEEPGRAM_API_KEY']}"
    assert {k: v[0] for k, v in request["query"].items()} == {
        "model": "nova-3",
        "diarize": "true",
        "utterances": "true",
        "punctuate": "true",
        "smart_format": "true",
    }


def test_transcribes_a_url(sandbox):
    spam = scenarios.SCENARIOS["spam"]

    result = transcriber().transcribe_url(scenarios.recording_url(spam, sandbox.url))

    assert_is_the_script(result, spam)
    [request] = sandbox.recorded("deepgram.listen")
    assert request["headers"]["content-type"].startswith("application/json")


@pytest.fixture
def other_host():
    """A plain file server (not the sandbox) holding a scenario recording under a new name."""
    audio = scenarios.audio_for(scenarios.SCENARIOS["long_call"])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == "/storage/recordings/42.wav"
            self.send_response(200 if found else 404)
            self.send_header("Content-Length", str(len(audio) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(audio)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_url_elsewhere_is_fetched_and_recognised_by_its_audio(sandbox, other_host):
    result = transcriber().transcribe_url(f"{other_host}/storage/recordings/42.wav")

    assert_is_the_script(result, scenarios.SCENARIOS["long_call"])


def test_audio_that_is_not_a_scenario_is_a_permanent_400(sandbox, other_host):
    with pytest.raises(ProviderError) as error:
        transcriber().transcribe_bytes(b"ID3\x04\x00" + bytes(2000))
    assert (error.value.status, error.value.permanent) == (400, True)
    assert "only transcribes its own scenario recordings" in error.value.detail

    with pytest.raises(ProviderError) as error:
        transcriber().transcribe_url(f"{other_host}/missing.wav")
    assert (error.value.status, error.value.permanent) == (400, True)


def test_no_audio_fails_before_any_request(sandbox):
    with pytest.raises(ProviderError, match="no audio"):
        transcriber().transcribe_bytes(b"")
    assert sandbox.recorded() == []


def test_a_429_is_retried_by_the_sdk(sandbox):
    sandbox.inject("deepgram.listen", "429", count=1)

    result = transcriber().transcribe_bytes(scenarios.audio_for(BOOKED))

    assert_is_the_script(result, BOOKED)
    assert len(sandbox.recorded("deepgram.listen")) == 2


def test_repeated_429s_end_in_a_transient_error(sandbox):
    sandbox.inject("deepgram.listen", "429", count=2)

    with pytest.raises(ProviderError) as error:
        transcriber().transcribe_bytes(scenarios.audio_for(BOOKED))

    assert (error.value.status, error.value.permanent) == (429, False)
    assert len(sandbox.recorded("deepgram.listen")) == 2  # 1 + max_retries


def test_a_500_is_transient(sandbox):
    sandbox.inject("deepgram.listen", "500")

    with pytest.raises(ProviderError) as error:
        transcriber(max_retries=0).transcribe_bytes(scenarios.audio_for(BOOKED))

    assert (error.value.status, error.value.permanent) == (500, False)


def test_a_timeout_is_transient(sandbox):
    sandbox.inject("deepgram.listen", "timeout", delay_seconds=3)

    started = time.monotonic()
    with pytest.raises(ProviderError) as error:
        transcriber().transcribe_bytes(scenarios.audio_for(BOOKED))

    assert not error.value.permanent and "timed out" in error.value.detail
    assert time.monotonic() - started < 2.9
    assert len(sandbox.recorded("deepgram.listen")) == 1  # a timeout is not retried in-call


def test_a_malformed_body_is_a_clear_error(sandbox):
    sandbox.inject("deepgram.listen", "malformed")

    with pytest.raises(ProviderError) as error:
        transcriber().transcribe_bytes(scenarios.audio_for(BOOKED))

    assert "malformed JSON" in error.value.detail and not error.value.permanent


def test_wrong_credentials_are_permanent(sandbox, settings):
    settings.DEEPGRAM_API_KEY = "not-the-key"

    with pytest.raises(ProviderError) as error:
        transcriber().transcribe_bytes(scenarios.audio_for(BOOKED))

    assert (error.value.status, error.value.permanent) == (401, True)
    assert "Invalid credentials" in error.value.detail


def test_a_missing_key_fails_before_any_request(sandbox, settings):
    settings.DEEPGRAM_API_KEY = None

    with pytest.raises(ProviderError, match="DEEPGRAM_API_KEY"):
        transcriber()
    assert sandbox.recorded() == []
