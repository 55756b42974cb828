"""Sandbox Shunya (UWC): the job API Otto defined in ``integrations/shunya/schemas.py``.

- ``POST /api/v1/transcriptions`` and ``POST /api/v1/analyses`` queue a job (202).
- ``GET /api/v1/jobs/{job_id}`` reads it; it completes ``JOB_DELAY`` seconds after
  submission, and then the job-complete webhook, signed with ``UWC_HMAC_SECRET``, is
  POSTed to the job's ``callback_url``.

Transcripts come from the scripted scenario behind the audio URL; analyses from the
keyword rules over the request's numbered transcript (so their utterance indices are the
caller's). Both are labelled ``"simulated": true``. Auth: the sandbox's
``UWC_API_KEY`` as a Bearer token, or an HS256 JWT (iss ``otto``) signed with its
``UWC_JWT_SECRET`` whose ``company_id`` matches ``X-Company-ID``.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt

from integrations.sandbox import scenarios
from integrations.sandbox.analysis_rules import SIMULATED_MODEL, analyze
from integrations.sandbox.config import CREDENTIALS
from integrations.sandbox.server import Request, Response, Sandbox, route
from integrations.shunya.signature import sign_shunya

JOB_DELAY = 0.2  # seconds; tests override with state["shunya"]["delay"]


def _error(status: int, code: str, message: str) -> Response:
    return Response.json({"error": {"code": code, "message": message}}, status)


def _authorize(request: Request) -> Response | None:
    company = request.headers.get("x-company-id", "").strip()
    if not company:
        return _error(400, "missing_company", "X-Company-ID is required")
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if token and token == CREDENTIALS["UWC_API_KEY"]:
        return None
    try:
        claims = jwt.decode(
            token,
            str(CREDENTIALS["UWC_JWT_SECRET"]),
            algorithms=["HS256"],
            issuer="otto",
            options={"require": ["exp", "iat", "iss", "sub"]},
        )
    except jwt.PyJWTError as exc:
        return _error(401, "unauthorized", f"invalid credentials: {type(exc).__name__}")
    if str(claims.get("company_id")) != company:
        return _error(403, "forbidden", "token is not for this X-Company-ID")
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


def _jobs(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    # The state holds whatever each provider keeps; this one keeps rows by id.
    jobs: dict[str, dict[str, Any]] = sandbox.state["shunya"].setdefault("jobs", {})
    return jobs


def _submit(request: Request, job_type: str, required: tuple[str, ...]) -> Response:
    if (denied := _authorize(request)) is not None:
        return denied
    try:
        body = request.json()
        missing = [name for name in required if not body.get(name)]
    except (ValueError, AttributeError):
        return _error(400, "invalid_json", "body must be a JSON object")
    if missing:
        return _error(422, "validation_error", f"missing: {', '.join(missing)}")
    sandbox = request.sandbox
    company = request.headers["x-company-id"].strip()
    idempotency_key = request.headers.get("idempotency-key")
    with sandbox.lock:
        for job in _jobs(sandbox).values():
            if idempotency_key and job["_idempotency"] == (company, idempotency_key):
                return Response.json(_public(job), 202)
    # As Shunya would, the audio is fetched once, when the job is queued (outside the lock:
    # the URL may be the app's own signed recording link).
    scenario = _scenario(body["audio_url"]) if job_type == "transcription" else None
    with sandbox.lock:
        jobs = _jobs(sandbox)
        for job in jobs.values():
            if idempotency_key and job["_idempotency"] == (company, idempotency_key):
                return Response.json(_public(job), 202)
        job_id = f"job_{uuid.uuid4().hex}"
        jobs[job_id] = job = {
            "_scenario": scenario,
            "job_id": job_id,
            "type": job_type,
            "status": "queued",
            "created_at": _now(),
            "completed_at": None,
            "error": None,
            "result": None,
            "metadata": body.get("metadata") or {},
            "_company": company,
            "_request": body,
            "_idempotency": (company, idempotency_key) if idempotency_key else None,
            "_ready_at": time.monotonic() + sandbox.state["shunya"].get("delay", JOB_DELAY),
        }
        delay = job["_ready_at"] - time.monotonic()
    sandbox.later(max(0.0, delay), lambda: _complete_and_notify(sandbox, job_id))
    return Response.json(_public(job), 202)


def _result(job: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    request = job["_request"]
    if job["type"] == "analysis":
        return _analysis(request["transcript"]), None
    scenario = job["_scenario"]
    if scenario is None:
        return None, {
            "code": "unsupported_audio",
            "message": "the sandbox only transcribes its own scenario recordings",
        }
    utterances = [
        {
            "speaker": u.speaker,
            "role": u.role,
            "start": u.start,
            "end": u.end,
            "text": u.text,
            "confidence": 0.98,
        }
        for u in scenario.utterances
    ]
    return {
        "language": request.get("language") or "en-US",
        "duration": scenario.duration,
        "text": " ".join(u.text for u in scenario.utterances),
        "utterances": utterances if request.get("diarize", True) else [],
        "simulated": True,
        "scenario": scenario.key,
    }, None


# The keys of an analysis result (integrations.shunya.schemas.AnalysisResult) the rules fill.
_ANALYSIS_KEYS = (
    "summary",
    "sentiment",
    "sentiment_score",
    "intent",
    "urgency",
    "qualified",
    "lead_quality",
    "booking_status",
    "objections",
    "requested_appointment",
    "pending_actions",
    "coaching_tips",
    "sop",
    "citations",
    "simulated",
)


def _analysis(transcript: str) -> dict[str, Any]:
    """The keyword rules' facts as Shunya's analysis result, with token counts."""
    facts = analyze(transcript)
    result = {key: facts[key] for key in _ANALYSIS_KEYS}
    result["objections"] = [
        {k: o[k] for k in ("category", "quote", "utterance", "resolved")}
        for o in facts["objections"]
    ]
    result.update(customer_name=None, service_address=facts["address"], model=SIMULATED_MODEL)
    # Roughly ~4 characters per token, as the sandbox's OpenAI counts them.
    tokens = {
        "input_tokens": len(transcript) // 4 + 1,
        "output_tokens": len(json.dumps(result)) // 4,
    }
    return {**result, "usage": tokens}


def _scenario(audio_url: str) -> scenarios.Scenario | None:
    """The scenario behind ``audio_url``: a sandbox recording URL names it; any other URL
    (the app's presigned or signed recording link) is fetched and recognised by its audio."""
    from integrations.sandbox.providers.deepgram import _fetch

    scenario = scenarios.scenario_for_url(audio_url)
    if scenario is None:
        scenario = scenarios.scenario_for_audio(_fetch(audio_url) or b"")
    return scenario


def _finish(sandbox: Sandbox, job_id: str) -> dict[str, Any] | None:
    """Complete the job if its time has come; idempotent. Returns it when newly finished."""
    with sandbox.lock:
        job = _jobs(sandbox).get(job_id)
        if job is None or job["status"] in ("completed", "failed"):
            return None
        if time.monotonic() < job["_ready_at"]:
            job["status"] = "processing"
            return None
        result, error = _result(job)
        job.update(
            status="failed" if error else "completed",
            result=result,
            error=error,
            completed_at=_now(),
        )
        return job


def _complete_and_notify(sandbox: Sandbox, job_id: str) -> None:
    _finish(sandbox, job_id)
    with sandbox.lock:
        job = _jobs(sandbox).get(job_id)
        if job is None or job.get("_notified") or job["status"] not in ("completed", "failed"):
            return
        job["_notified"] = True
        callback = job["_request"].get("callback_url")
        event = "job.completed" if job["status"] == "completed" else "job.failed"
        body = json.dumps({"event": event, "job": _public(job)}).encode()
    if callback:
        headers = {
            "Content-Type": "application/json",
            **sign_shunya(body, str(CREDENTIALS["UWC_HMAC_SECRET"])),
        }
        sandbox.deliver(callback, body, headers)


@route("POST", r"/api/v1/transcriptions", "shunya.transcriptions.create")
def create_transcription(request: Request) -> Response:
    return _submit(request, "transcription", ("audio_url",))


@route("POST", r"/api/v1/analyses", "shunya.analyses.create")
def create_analysis(request: Request) -> Response:
    return _submit(request, "analysis", ("transcript",))


@route("GET", r"/api/v1/jobs/(?P<job_id>[A-Za-z0-9_-]+)", "shunya.jobs.get")
def get_job(request: Request) -> Response:
    if (denied := _authorize(request)) is not None:
        return denied
    job_id = request.params["job_id"]
    _finish(request.sandbox, job_id)  # polling sees completion even before the webhook
    with request.sandbox.lock:
        job = _jobs(request.sandbox).get(job_id)
        if job is None or job["_company"] != request.headers["x-company-id"].strip():
            return _error(404, "not_found", f"no job {job_id}")
        return Response.json(_public(job))
