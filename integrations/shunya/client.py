"""Shunya (UWC) jobs over httpx: submit transcription and analysis, read a job.

Auth is a short-lived HS256 JWT signed with ``UWC_JWT_SECRET`` (preferred: a leaked token
expires in minutes) or, without one, ``Bearer UWC_API_KEY``. Every request names the Otto
company (``X-Company-ID``), carries the request id for cross-system tracing
(``X-Request-ID``) and pins the API version (``X-UWC-Version``). The REST shape is
documented in :mod:`.schemas`.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import httpx
import jwt
from django.conf import settings

from integrations.errors import ProviderError, track
from integrations.http import outbound_request_id, parse_model, request_json
from integrations.shunya.schemas import AnalysisRequest, Job, TranscriptionRequest

logger = logging.getLogger(__name__)

PROVIDER = "shunya"
TOKEN_LIFETIME = 300  # seconds: long enough for clock skew, short enough to be useless if leaked


class ShunyaClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str = "",
        jwt_secret: str = "",
        version: str = "v1",
        timeout: float = 30.0,
    ) -> None:
        if not base_url:
            raise ProviderError(PROVIDER, "UWC_BASE_URL is not configured", permanent=True)
        if not (api_key or jwt_secret):
            raise ProviderError(
                PROVIDER, "neither UWC_JWT_SECRET nor UWC_API_KEY is set", permanent=True
            )
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.jwt_secret = jwt_secret
        self.version = version
        self.timeout = timeout

    @classmethod
    def from_settings(cls) -> ShunyaClient:
        base_url = (
            settings.UWC_STAGING_BASE_URL if settings.USE_UWC_STAGING else settings.UWC_BASE_URL
        )
        return cls(
            base_url=base_url,
            api_key=settings.UWC_API_KEY or "",
            jwt_secret=settings.UWC_JWT_SECRET or "",
            version=settings.UWC_VERSION,
            timeout=float(settings.PROVIDER_TIMEOUTS["shunya"]),
        )

    # --- operations ------------------------------------------------------------------

    def submit_transcription(
        self,
        company_id: int | str,
        *,
        audio_url: str,
        callback_url: str | None = None,
        language: str = "en-US",
        diarize: bool = True,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Queue ASR of the recording at ``audio_url``; the result arrives by webhook or poll."""
        body = TranscriptionRequest(
            audio_url=audio_url,
            callback_url=callback_url,
            language=language,
            diarize=diarize,
            metadata=metadata or {},
        )
        return self._job(
            "submit_transcription",
            "POST",
            "/api/v1/transcriptions",
            company_id,
            body.model_dump(),
            idempotency_key,
        )

    def submit_analysis(
        self,
        company_id: int | str,
        *,
        transcript: str,
        callback_url: str | None = None,
        utterances: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Queue analysis of an (already redacted) transcript."""
        body = AnalysisRequest(
            transcript=transcript,
            callback_url=callback_url,
            utterances=utterances or [],
            metadata=metadata or {},
        )
        return self._job(
            "submit_analysis",
            "POST",
            "/api/v1/analyses",
            company_id,
            body.model_dump(),
            idempotency_key,
        )

    def get_job(self, company_id: int | str, job_id: str) -> Job:
        """A job's status, and its result once completed."""
        return self._job("get_job", "GET", f"/api/v1/jobs/{job_id}", company_id, None, None)

    # --- plumbing ----------------------------------------------------------------------

    def _headers(self, company_id: int | str, idempotency_key: str | None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._token(company_id)}",
            "X-Company-ID": str(company_id),
            "X-Request-ID": outbound_request_id(),
            "X-UWC-Version": self.version,
            "Accept": "application/json",
        }
        if idempotency_key:
            # Lets a submit that timed out be retried without creating a second job.
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def _token(self, company_id: int | str) -> str:
        if not self.jwt_secret:
            return self.api_key
        now = int(time.time())
        claims = {
            "iss": "otto",
            "sub": f"company:{company_id}",
            "company_id": str(company_id),
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def _job(
        self,
        operation: str,
        method: str,
        path: str,
        company_id: int | str,
        body: dict[str, Any] | None,
        idempotency_key: str | None,
    ) -> Job:
        with track(PROVIDER, operation):
            data = self._send(method, path, company_id, body, idempotency_key)
            return parse_model(PROVIDER, Job, data, path)

    def _send(
        self,
        method: str,
        path: str,
        company_id: int | str,
        body: dict[str, Any] | None,
        idempotency_key: str | None,
    ) -> Any:
        return request_json(
            PROVIDER,
            method,
            self.base_url + path,
            # A fresh token per attempt: it is cheap, and never stale on a retry.
            headers=lambda: self._headers(company_id, idempotency_key),
            body=body,
            timeout=self.timeout,
            error_text=_error_message,
            label=f"{method} {path}",
        )


def _error_message(response: httpx.Response) -> str:
    """UWC's ``{"error": {"code", "message"}}`` when present, else the start of the body."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        return f"{error.get('code', 'error')}: {error.get('message', '')}"
    if isinstance(error, str):
        return error
    return response.text[:200] or response.reason_phrase
