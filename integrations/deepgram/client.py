"""Deepgram pre-recorded transcription through the official ``deepgram-sdk`` (7.x).

Built per call from settings (with the process's shared TLS context, ``integrations.http``):
``DeepgramClientEnvironment`` pointed at
``DEEPGRAM_API_BASE_URL`` (the SDK has no base-URL variable of its own, providers.md §3.2),
``DEEPGRAM_API_KEY`` and an explicit timeout (``PROVIDER_TIMEOUTS["deepgram"]``).

Every transcription asks for nova-3 with diarize, utterances, punctuate and smart_format.
The SDK itself retries 429/5xx/408/409 and connection errors, honouring ``Retry-After``;
its backoff starts at 1 s and doubles, so we allow it one retry and leave longer backoff
to the pipeline. Timeouts are not retried in-call: the audio may be long.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from deepgram import DeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.core.parse_error import ParsingError
from deepgram.environment import DeepgramClientEnvironment
from django.conf import settings

from integrations.deepgram.schemas import Transcription, Utterance
from integrations.errors import ProviderError, track
from integrations.http import tls_context

PROVIDER = "deepgram"
MODEL = "nova-3"
OPTIONS: dict[str, Any] = {
    "model": MODEL,
    "diarize": True,
    "utterances": True,
    "punctuate": True,
    "smart_format": True,
}


class DeepgramTranscriber:
    def __init__(
        self, *, base_url: str, api_key: str | None, timeout: float, max_retries: int = 1
    ) -> None:
        if not api_key:
            raise ProviderError(PROVIDER, "DEEPGRAM_API_KEY is not configured", permanent=True)
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries

    @classmethod
    def from_settings(cls, *, max_retries: int = 1) -> DeepgramTranscriber:
        return cls(
            base_url=settings.DEEPGRAM_API_BASE_URL,
            api_key=settings.DEEPGRAM_API_KEY,
            timeout=float(settings.PROVIDER_TIMEOUTS["deepgram"]),
            max_retries=max_retries,
        )

    def transcribe_bytes(self, audio: bytes) -> Transcription:
        if not audio:
            raise ProviderError(PROVIDER, "no audio to transcribe", permanent=True)
        with track(PROVIDER, "transcribe"):
            media = self._client().listen.v1.media
            return self._run(lambda: media.transcribe_file(request=audio, **OPTIONS))

    def transcribe_url(self, url: str) -> Transcription:
        with track(PROVIDER, "transcribe"):
            media = self._client().listen.v1.media
            return self._run(lambda: media.transcribe_url(url=url, **OPTIONS))

    def _client(self) -> DeepgramClient:
        return DeepgramClient(
            api_key=self.api_key,
            environment=_environment(self.base_url),
            timeout=self.timeout,
            max_retries=self.max_retries,
            httpx_client=httpx.Client(timeout=self.timeout, verify=tls_context()),
        )

    def _run(self, call: Any) -> Transcription:
        try:
            response = call()
        except ApiError as exc:  # BadRequestError (400) is a subclass
            raise _api_error(exc) from exc
        except ParsingError as exc:
            raise ProviderError(
                PROVIDER, f"unexpected response shape: {exc.cause or exc}", permanent=True
            ) from exc
        except httpx.TimeoutException as exc:
            raise ProviderError(PROVIDER, "transcription timed out", permanent=False) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                PROVIDER, f"transcription failed: {type(exc).__name__}: {exc}", permanent=False
            ) from exc
        return _transcription(response)


def _environment(base_url: str) -> DeepgramClientEnvironment:
    # Only REST is used; the websocket URLs follow the base so nothing points elsewhere.
    parts = urlsplit(base_url)
    ws = urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc, "", "", ""))
    return DeepgramClientEnvironment(base=base_url, production=ws, agent=ws, agent_rest=base_url)


def _api_error(exc: ApiError) -> ProviderError:
    status = exc.status_code
    if status is None:
        return ProviderError(PROVIDER, f"client error: {exc.body}", permanent=True)
    if status < 400:
        # The SDK raises ApiError(200, body=text) when a 2xx body is not JSON.
        return ProviderError(
            PROVIDER,
            f"malformed JSON in a {status} response: {str(exc.body)[:120]!r}",
            permanent=False,
            status=status,
        )
    return ProviderError.from_status(PROVIDER, status, f"HTTP {status}: {_message(exc.body)}")


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("err_msg") or body.get("message") or body.get("err_code") or body)
    return str(body)[:200]


def _transcription(response: Any) -> Transcription:
    """Our result from the SDK's ListenV1Response (fields are optional there)."""
    metadata = getattr(response, "metadata", None)
    results = getattr(response, "results", None)
    request_id = getattr(metadata, "request_id", None)
    channels = getattr(results, "channels", None) or []
    alternatives = (getattr(channels[0], "alternatives", None) or []) if channels else []
    if not request_id or not alternatives:
        # E.g. a callback acknowledgement ({"request_id"}) or an empty body.
        raise ProviderError(
            PROVIDER, "the response has no request id or no transcript", permanent=True
        )
    best = alternatives[0]
    utterances = [
        Utterance(
            speaker=u.speaker or 0,
            start=u.start or 0.0,
            end=u.end or 0.0,
            text=(u.transcript or "").strip(),
            confidence=u.confidence,
        )
        for u in (getattr(results, "utterances", None) or [])
        if (u.transcript or "").strip()
    ] or _from_words(best.words or [])
    return Transcription(
        request_id=request_id,
        text=best.transcript or "",
        duration=getattr(metadata, "duration", None),
        utterances=utterances,
        model=_model_name(metadata),
        language=getattr(channels[0], "detected_language", None),
    )


def _from_words(words: list[Any]) -> list[Utterance]:
    """Utterances rebuilt from diarised words, when Deepgram sent none."""
    runs = groupby(words, key=lambda w: w.speaker or 0)
    utterances = []
    for speaker, group in runs:
        run = list(group)
        text = " ".join(getattr(w, "punctuated_word", None) or w.word or "" for w in run)
        confidences = [w.confidence for w in run if w.confidence is not None]
        utterances.append(
            Utterance(
                speaker=speaker,
                start=run[0].start or 0.0,
                end=run[-1].end or 0.0,
                text=text.strip(),
                confidence=sum(confidences) / len(confidences) if confidences else None,
            )
        )
    return utterances


def _model_name(metadata: Any) -> str | None:
    models = getattr(metadata, "models", None) or []
    info = (getattr(metadata, "model_info", None) or {}).get(models[0]) if models else None
    if isinstance(info, dict):
        return info.get("name") or info.get("arch")
    return MODEL
