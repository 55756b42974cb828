"""Sandbox Deepgram: ``POST /v1/listen`` (pre-recorded), answering from the scripts.

Auth: ``Authorization: Token <the sandbox's DEEPGRAM_API_KEY>``; 401 otherwise.

The audio arrives as raw bytes, or as JSON ``{"url": …}``. The transcript is the scripted
conversation of the scenario the audio belongs to: a sandbox recording URL names it, and
the generated WAV files carry it inside (:mod:`integrations.sandbox.audio`). A URL the
sandbox does not recognise is fetched, as Deepgram would, and its bytes identified.
**Audio that is not a sandbox scenario gets a 400** (Deepgram's error shape): the sandbox
does no speech recognition, and inventing a transcript for real audio would mislead.

The answer is Deepgram's pre-recorded JSON: ``metadata`` (request id, sha256, duration,
model info), ``results.channels[0].alternatives[0]`` (transcript, confidence, words with
``speaker`` when ``diarize=true`` and ``punctuated_word``), and ``results.utterances`` when
``utterances=true``. The model is reported as ``sandbox-simulated``: it is not Deepgram.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from integrations.sandbox import scenarios
from integrations.sandbox.config import CREDENTIALS
from integrations.sandbox.server import Request, Response, route

MODEL_UUID = "00000000-5a4d-4b0c-8000-000000000003"
FETCH_TIMEOUT = 5.0
MAX_FETCH_BYTES = 50 * 1024 * 1024


def _error(status: int, code: str, message: str, request_id: str) -> Response:
    return Response.json({"err_code": code, "err_msg": message, "request_id": request_id}, status)


def _flag(request: Request, name: str) -> bool:
    return (request.arg(name) or "false").lower() == "true"


def _fetch(url: str) -> bytes | None:
    """The bytes at ``url`` (None when they cannot be had), as Deepgram fetches a URL."""
    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT, follow_redirects=True) as response:
            if response.status_code != 200:
                return None
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_FETCH_BYTES:
                    return None
            return bytes(data)
    except httpx.HTTPError:
        return None


def _audio(request: Request) -> tuple[bytes, scenarios.Scenario | None]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            url = str(request.json()["url"])
        except (ValueError, KeyError, TypeError):
            return request.body, None
        scenario = scenarios.scenario_for_url(url)
        if scenario is not None:
            return scenarios.audio_for(scenario), scenario
        data = _fetch(url) or b""
        return data, scenarios.scenario_for_audio(data)
    return request.body, scenarios.scenario_for_audio(request.body)


def _words(utterance: scenarios.Utterance, diarize: bool) -> list[dict[str, Any]]:
    """Word timings spread evenly over the utterance (the script has no finer timing)."""
    tokens = utterance.text.split()
    step = (utterance.end - utterance.start) / len(tokens)
    words = []
    for index, token in enumerate(tokens):
        word = {
            "word": token.strip(".,!?;:").lower(),
            "start": round(utterance.start + index * step, 3),
            "end": round(utterance.start + (index + 1) * step, 3),
            "confidence": 0.98,
            "punctuated_word": token,
        }
        if diarize:
            word |= {"speaker": utterance.speaker, "speaker_confidence": 0.9}
        words.append(word)
    return words


def transcript_body(
    scenario: scenarios.Scenario,
    *,
    request_id: str,
    sha256: str,
    diarize: bool,
    utterances: bool,
    model: str,
) -> dict[str, Any]:
    spoken = [(u, _words(u, diarize)) for u in scenario.utterances]
    body: dict[str, Any] = {
        "metadata": {
            "transaction_key": "deprecated",
            "request_id": request_id,
            "sha256": sha256,
            "created": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "duration": scenario.duration,
            "channels": 1,
            "models": [MODEL_UUID],
            "model_info": {
                MODEL_UUID: {"name": "sandbox-simulated", "version": "1", "arch": model}
            },
            "extra": {"simulated": "true", "scenario": scenario.key},
        },
        "results": {
            "channels": [
                {
                    "alternatives": [
                        {
                            "transcript": " ".join(u.text for u in scenario.utterances),
                            "confidence": 0.98,
                            "words": [w for _, words in spoken for w in words],
                        }
                    ],
                    "detected_language": "en",
                }
            ]
        },
    }
    if utterances:
        body["results"]["utterances"] = [
            {
                "start": u.start,
                "end": u.end,
                "confidence": 0.98,
                "channel": 0,
                "transcript": u.text,
                "words": words,
                "speaker": u.speaker,
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{request_id}/{index}")),
            }
            for index, (u, words) in enumerate(spoken)
        ]
    return body


@route("POST", r"/v1/listen", "deepgram.listen")
def listen(request: Request) -> Response:
    request_id = str(uuid.uuid4())
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "token" or key.strip() != CREDENTIALS["DEEPGRAM_API_KEY"]:
        return _error(401, "INVALID_AUTH", "Invalid credentials.", request_id)
    if request.arg("callback"):
        return _error(400, "Bad Request", "The sandbox does not support callback mode.", request_id)
    data, scenario = _audio(request)
    if not data:
        return _error(400, "Bad Request", "Bad Request: failed to get audio.", request_id)
    if scenario is None:
        return _error(
            400,
            "Bad Request",
            "The Otto sandbox only transcribes its own scenario recordings; this audio is"
            " not one of them.",
            request_id,
        )
    body = transcript_body(
        scenario,
        request_id=request_id,
        sha256=hashlib.sha256(data).hexdigest(),
        diarize=_flag(request, "diarize"),
        utterances=_flag(request, "utterances"),
        model=request.arg("model") or "base",
    )
    return Response(
        200,
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "dg-request-id": request_id},
    )
