"""Sandbox Bland: ``POST /v1/calls``, ``GET /v1/calls/{id}`` and the post-call webhook.

A sent call "ends" ``CALL_DELAY`` seconds later with a short scripted, clearly simulated
conversation (built from the call's ``first_sentence``/``request_data``). The full call
object is then POSTed to the call's ``webhook`` URL, signed with ``X-Webhook-Signature``
(hex HMAC-SHA256 of the raw body with the sandbox's ``BLAND_WEBHOOK_SECRET``).
Auth: ``authorization: <the sandbox's BLAND_API_KEY>`` (``Bearer`` accepted too).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.bland.signature import SIGNATURE_HEADER, sign_bland
from integrations.sandbox.config import CREDENTIALS
from integrations.sandbox.server import Request, Response, Sandbox, route

CALL_DELAY = 0.2  # seconds; tests override with state["bland"]["delay"]
DURATION_SECONDS = 45
SIMULATED = "Simulated call from the Otto sandbox; no phone call was placed."


def _error(status: int, message: str, errors: list[str] | None = None) -> Response:
    return Response.json({"status": "error", "message": message, "errors": errors or []}, status)


def _authorized(request: Request) -> bool:
    key = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    return bool(key) and key == CREDENTIALS["BLAND_API_KEY"]


def _calls(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    # The state holds whatever each provider keeps; this one keeps rows by id.
    calls: dict[str, dict[str, Any]] = sandbox.state["bland"].setdefault("calls", {})
    return calls


def _transcript(call_id: str, body: dict[str, Any], started: datetime) -> list[dict[str, Any]]:
    name = (body.get("request_data") or {}).get("name") or "there"
    lines = [
        ("assistant", body.get("first_sentence") or f"Hi {name}, this is a follow-up call."),
        ("user", "Hi, yes, this is a good time."),
        ("assistant", "Would you like to book the visit we discussed?"),
        ("user", "Yes, tomorrow at 9 am works for me."),
        ("assistant", f"Great, you're booked. ({SIMULATED})"),
    ]
    return [
        {
            "id": index + 1,
            "created_at": (started + timedelta(seconds=8 * index)).isoformat(),
            "text": text,
            "user": user,
            "c_id": call_id,
        }
        for index, (user, text) in enumerate(lines)
    ]


@route("POST", r"/v1/calls", "bland.calls.create")
def create_call(request: Request) -> Response:
    if not _authorized(request):
        return _error(401, "Invalid API key (sandbox)")
    try:
        body = request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _error(400, "Invalid parameters", ["Body must be a JSON object."])
    errors = []
    if not body.get("phone_number"):
        errors.append("Missing required parameter: phone_number.")
    if not (body.get("task") or body.get("pathway_id")):
        errors.append("Missing required parameter: task or pathway_id.")
    if errors:
        return _error(400, "Invalid parameters", errors)

    sandbox = request.sandbox
    call_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    call = {
        "call_id": call_id,
        "c_id": call_id,
        "status": "queued",
        "queue_status": "queued",
        "completed": False,
        "inbound": False,
        "to": body["phone_number"],
        "from": body.get("from") or "+15005550006",
        "call_length": None,
        "corrected_duration": None,
        "created_at": now.isoformat(),
        "started_at": None,
        "end_at": None,
        "answered_by": None,
        "record": bool(body.get("record", False)),
        "recording_url": None,
        "summary": None,
        "price": None,
        "concatenated_transcript": "",
        "transcripts": [],
        "metadata": body.get("metadata") or {},
        "request_data": body.get("request_data") or {},
        "variables": {"to": body["phone_number"]},
        "max_duration": body.get("max_duration", 30),
        "pathway_id": body.get("pathway_id"),
        "error_message": None,
        "call_ended_by": None,
        "_webhook": body.get("webhook"),
        "_body": body,
    }
    with sandbox.lock:
        _calls(sandbox)[call_id] = call
        delay = sandbox.state["bland"].get("delay", CALL_DELAY)
    sandbox.later(delay, lambda: _finish_and_notify(sandbox, call_id))
    return Response.json(
        {"status": "success", "call_id": call_id, "message": "Call successfully queued."}
    )


def _public(call: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in call.items() if not k.startswith("_")}


def _finish_and_notify(sandbox: Sandbox, call_id: str) -> None:
    with sandbox.lock:
        call = _calls(sandbox).get(call_id)
        if call is None or call["completed"]:
            return
        ended = datetime.now(UTC)
        started = ended - timedelta(seconds=DURATION_SECONDS)
        transcripts = _transcript(call_id, call["_body"], started)
        call.update(
            status="completed",
            queue_status="complete",
            completed=True,
            call_length=DURATION_SECONDS / 60,
            corrected_duration=str(DURATION_SECONDS),
            started_at=started.isoformat(),
            end_at=ended.isoformat(),
            answered_by="human",
            summary=f"{SIMULATED} The customer agreed to a visit tomorrow at 9 am.",
            price=round(0.09 * DURATION_SECONDS / 60, 4),
            transcripts=transcripts,
            concatenated_transcript=" \n ".join(f"{t['user']}: {t['text']}" for t in transcripts),
            call_ended_by="ASSISTANT",
            recording_url=(
                f"{sandbox.url}/v1/recordings/{call_id}.mp3" if call["record"] else None
            ),
        )
        webhook = call["_webhook"]
        body = json.dumps(_public(call)).encode()
    if webhook:
        secret = str(CREDENTIALS["BLAND_WEBHOOK_SECRET"])
        sandbox.deliver(
            webhook,
            body,
            {"Content-Type": "application/json", SIGNATURE_HEADER: sign_bland(body, secret)},
        )


@route("GET", r"/v1/calls/(?P<call_id>[0-9a-fA-F-]+)", "bland.calls.get")
def get_call(request: Request) -> Response:
    if not _authorized(request):
        return _error(401, "Invalid API key (sandbox)")
    with request.sandbox.lock:
        call = _calls(request.sandbox).get(request.params["call_id"])
        if call is None:
            return _error(404, "Call not found")
        return Response.json(_public(call))


@route("GET", r"/v1/recordings/(?P<call_id>[0-9a-fA-F-]+)\.mp3", "bland.recordings.get")
def get_recording(request: Request) -> Response:
    """A tiny placeholder MP3 (one silent MPEG-1 Layer III frame) for a recorded call."""
    with request.sandbox.lock:
        call = _calls(request.sandbox).get(request.params["call_id"])
    if call is None or not call["record"] or not call["completed"]:
        return _error(404, "Recording not found")
    frame = b"\xff\xfb\x90\x64" + b"\x00" * 413  # 128 kbps, 44.1 kHz: 417 bytes per frame
    return Response(200, frame, {"Content-Type": "audio/mpeg"})
