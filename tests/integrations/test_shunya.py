"""The Shunya (UWC) client and signature helper against the sandbox."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from integrations.errors import ProviderError
from integrations.sandbox import scenarios
from integrations.shunya.client import ShunyaClient
from integrations.shunya.schemas import JobEvent, JobStatus, JobType
from integrations.shunya.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    check_shunya_signature,
    compute_shunya_signature,
    sign_shunya,
)
from otto.logging import bind_request_id
from tests.conftest import wait_for

SECRET = "test-uwc-hmac-secret"
BODY = b'{"event":"job.completed","job":{"job_id":"job_1"}}'
NOW = 1_764_350_000.0

TRANSCRIPT = """agent: Acme Plumbing, this is Dana.
customer: Hi, do you install solar panels?
agent: Sorry, we don't do solar, we only do plumbing.
customer: Okay, thanks anyway."""


def client() -> ShunyaClient:
    return ShunyaClient.from_settings()


@pytest.fixture
def captured(sandbox):
    deliveries: list[tuple[str, bytes, dict[str, str]]] = []
    sandbox.outbound = lambda url, body, headers: (deliveries.append((url, body, headers)), 200)[1]
    sandbox.state["shunya"]["delay"] = 0.05
    return deliveries


# --- the client ----------------------------------------------------------------------


def test_analysis_job_completes_and_is_read_back(sandbox, captured):
    job = client().submit_analysis(
        7, transcript=TRANSCRIPT, callback_url="http://testserver/webhooks/shunya"
    )
    assert job.type is JobType.ANALYSIS and job.status is JobStatus.QUEUED

    done = wait_for(
        lambda: (j := client().get_job(7, job.job_id)).done and j, timeout=3, interval=0.05
    )

    analysis = done.analysis()
    assert done.status is JobStatus.COMPLETED
    assert analysis.booking_status == "service_not_offered"
    assert analysis.lead_quality == "cold"
    assert analysis.simulated is True and analysis.model == "otto-sandbox-rules-v1"


def test_requests_carry_jwt_company_request_id_and_version(sandbox, settings):
    settings.UWC_VERSION = "2025-01"
    token = bind_request_id("req-abc")
    try:
        client().submit_analysis(42, transcript=TRANSCRIPT)
    finally:
        bind_request_id(None, token)

    headers = sandbox.recorded("shunya")[0]["headers"]
    assert headers["x-company-id"] == "42"
    assert headers["x-request-id"] == "req-abc"
    assert headers["x-uwc-version"] == "2025-01"
    token = headers["authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, settings.UWC_JWT_SECRET, algorithms=["HS256"], issuer="otto")
    assert claims["company_id"] == "42" and claims["sub"] == "company:42"
    assert claims["exp"] - claims["iat"] == 300


def test_api_key_is_used_without_a_jwt_secret(sandbox, settings):
    settings.UWC_JWT_SECRET = ""

    client().submit_analysis(1, transcript=TRANSCRIPT)

    auth = sandbox.recorded("shunya")[0]["headers"]["authorization"]
    assert auth == f"Bearer {settings.UWC_API_KEY}"
    assert sandbox.recorded("shunya")[0]["headers"]["x-request-id"]  # generated when unbound


def test_staging_base_url_is_used_when_asked(sandbox, settings):
    settings.UWC_BASE_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.USE_UWC_STAGING = True

    assert client().submit_analysis(1, transcript=TRANSCRIPT).job_id


def test_idempotency_key_returns_the_same_job(sandbox):
    first = client().submit_analysis(1, transcript=TRANSCRIPT, idempotency_key="call-9")
    again = client().submit_analysis(1, transcript=TRANSCRIPT, idempotency_key="call-9")

    assert first.job_id == again.job_id


def scenario_recording(sandbox) -> tuple[scenarios.Scenario, str]:
    """A scenario and a sandbox recording URL that maps back to it, or a skip saying why.

    scenarios.py is being completed in parallel; its URL scheme is its own, so this asks
    it (``recording_url``) and checks the answer with ``scenario_for_url``.
    """
    if not scenarios.SCENARIOS:
        pytest.skip("integrations/sandbox/scenarios.py defines no scenarios yet")
    scenario = next(iter(scenarios.SCENARIOS.values()))
    url_for = getattr(scenarios, "recording_url", None)
    if not callable(url_for):
        pytest.skip("scenarios.py has no recording_url(); cannot build a scenario audio URL")
    try:
        url = url_for(scenario, sandbox.url)
    except TypeError:
        url = url_for(scenario)
    try:
        found = scenarios.scenario_for_url(url)
    except NotImplementedError:
        pytest.skip("scenarios.scenario_for_url() is not implemented yet")
    assert found is not None and found.key == scenario.key, f"{url} does not map back"
    return scenario, url


def test_transcription_job_returns_the_scenario_transcript(sandbox, captured):
    scenario, audio_url = scenario_recording(sandbox)

    job = client().submit_transcription(3, audio_url=audio_url, callback_url="http://t/x")
    done = wait_for(
        lambda: (j := client().get_job(3, job.job_id)).done and j, timeout=3, interval=0.05
    )

    result = done.transcription()
    assert done.status is JobStatus.COMPLETED and result.simulated is True
    assert [u.text for u in result.utterances] == [u.text for u in scenario.utterances]
    assert result.duration == scenario.duration


def test_unknown_audio_fails_the_job_clearly(sandbox, captured):
    job = client().submit_transcription(3, audio_url="https://example.com/not-a-scenario.mp3")

    done = wait_for(
        lambda: (j := client().get_job(3, job.job_id)).done and j, timeout=3, interval=0.05
    )

    assert done.status is JobStatus.FAILED
    assert done.error.code == "unsupported_audio"


def test_another_company_cannot_read_the_job(sandbox):
    job = client().submit_analysis(1, transcript=TRANSCRIPT)

    with pytest.raises(ProviderError) as caught:
        client().get_job(2, job.job_id)

    assert caught.value.permanent is True and caught.value.status == 404


def test_429_is_retried_once_then_transient(sandbox):
    sandbox.inject("shunya.analyses.create", "429", count=1)
    assert client().submit_analysis(1, transcript=TRANSCRIPT).job_id
    assert len(sandbox.recorded("shunya.analyses.create")) == 2

    sandbox.inject("shunya.analyses.create", "429", count=2)
    with pytest.raises(ProviderError) as caught:
        client().submit_analysis(1, transcript=TRANSCRIPT)
    assert caught.value.permanent is False
    assert caught.value.status == 429 and caught.value.retry_after == 1


@pytest.mark.parametrize(("mode", "status"), [("500", 500), ("timeout", None)])
def test_server_errors_and_timeouts_are_transient(sandbox, mode, status):
    sandbox.inject("shunya.jobs.get", mode, count=1, delay_seconds=3)

    with pytest.raises(ProviderError) as caught:
        client().get_job(1, "job_missing")

    assert caught.value.permanent is False
    assert caught.value.status == status


def test_malformed_body_is_a_clear_error(sandbox):
    sandbox.inject("shunya.transcriptions.create", "malformed")

    with pytest.raises(ProviderError) as caught:
        client().submit_transcription(1, audio_url="http://x/a.mp3")

    assert caught.value.permanent is True
    assert "malformed JSON" in caught.value.detail


def test_bad_credentials_are_permanent(sandbox, settings):
    settings.UWC_JWT_SECRET = "not-the-sandbox-secret-but-32-bytes-long"

    with pytest.raises(ProviderError) as caught:
        client().submit_analysis(1, transcript=TRANSCRIPT)

    assert caught.value.permanent is True and caught.value.status == 401
    assert "unauthorized" in caught.value.detail


# --- the webhook the sandbox sends ---------------------------------------------------


def test_job_complete_webhook_verifies_with_the_app_secret(sandbox, settings, captured):
    job = client().submit_analysis(5, transcript=TRANSCRIPT, callback_url="http://testserver/w")

    wait_for(lambda: captured, timeout=3, interval=0.05)

    url, body, headers = captured[0]
    assert url == "http://testserver/w"
    assert check_shunya_signature(
        body, headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER], settings.UWC_HMAC_SECRET
    )
    event = JobEvent.model_validate(json.loads(body))
    assert event.event == "job.completed" and event.job.job_id == job.job_id
    assert event.job.analysis().booking_status == "service_not_offered"


# --- the signature helper ------------------------------------------------------------


def headers_at(ts: float, secret: str = SECRET) -> dict[str, str]:
    return sign_shunya(BODY, secret, now=ts)


def check(headers: dict[str, str], body: bytes = BODY) -> bool:
    return check_shunya_signature(
        body, headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER), SECRET, now=NOW
    )


def test_known_vector():
    # printf '%s' '1764350000000.<BODY>' | openssl dgst -sha256 -hmac test-uwc-hmac-secret
    expected = "10421f30bc086f53189ce24b151a8e1eff7eb0eebb80bbb8ecb4248b59f9c5fd"
    assert compute_shunya_signature(BODY, "1764350000000", SECRET) == expected


def test_valid_signature():
    assert check(headers_at(NOW - 10))


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h: headers_at(NOW, "wrong-secret"), id="wrong secret"),
        pytest.param(lambda h: {**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER][:40]}, id="truncated"),
        pytest.param(lambda h: {**h, SIGNATURE_HEADER: "z" * 64}, id="non-hex"),
        pytest.param(lambda h: headers_at(NOW - 301), id="stale"),
        pytest.param(lambda h: headers_at(NOW + 301), id="future"),
        pytest.param(lambda h: {**h, TIMESTAMP_HEADER: "yesterday"}, id="garbled timestamp"),
        pytest.param(lambda h: {**h, TIMESTAMP_HEADER: str(int(NOW))}, id="timestamp in seconds"),
        pytest.param(lambda h: {SIGNATURE_HEADER: h[SIGNATURE_HEADER]}, id="missing timestamp"),
        pytest.param(lambda h: {TIMESTAMP_HEADER: h[TIMESTAMP_HEADER]}, id="missing signature"),
    ],
)
def test_rejected_signatures(tamper):
    assert not check(tamper(headers_at(NOW)))


def test_a_changed_body_is_rejected():
    assert not check(headers_at(NOW), body=BODY + b" ")


def test_a_valid_signature_with_the_timestamp_swapped_is_rejected():
    headers = headers_at(NOW - 20)
    headers[TIMESTAMP_HEADER] = str(int((NOW - 10) * 1000))
    assert not check(headers)


def test_default_clock_accepts_a_fresh_signature():
    headers = sign_shunya(BODY, SECRET)
    assert check_shunya_signature(
        BODY, headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER], SECRET
    )
    assert abs(int(headers[TIMESTAMP_HEADER]) / 1000 - time.time()) < 5
