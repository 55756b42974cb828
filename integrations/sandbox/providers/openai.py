"""Sandbox OpenAI: ``/v1/chat/completions`` and ``/v1/responses`` with structured output.

The answer is never a model's: :mod:`integrations.sandbox.analysis_rules` computes facts
from the transcript in the request, then fits them to the JSON schema the request asks
for, so the official SDK's ``.parse()`` succeeds for any pydantic model. The model name
(``otto-sandbox-rules-v1``) and every free-text field say it is simulated.

Auth: ``Authorization: Bearer sk-sandbox…``. Any other key, or a key revoked with
``POST /_sandbox/openai/revoke {"key": …}``, gets OpenAI's 401 body.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from integrations.sandbox.analysis_rules import (
    SIMULATED_MODEL,
    SIMULATED_NOTE,
    analyze,
    fit_to_schema,
)
from integrations.sandbox.server import Request, Response, route

KEY_PREFIX = "sk-sandbox"


def _error(status: int, message: str, code: str, kind: str = "invalid_request_error") -> Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Response.json(body, status)


def _check_auth(request: Request) -> Response | None:
    header = request.headers.get("authorization", "")
    key = header.removeprefix("Bearer ").strip()
    revoked = request.sandbox.state["openai"].get("revoked", set())
    if not key.startswith(KEY_PREFIX) or key in revoked:
        return _error(401, "Incorrect API key provided (sandbox).", "invalid_api_key")
    return None


def _texts(content: Any) -> list[str]:
    """Text out of a message ``content``: a string or a list of typed parts."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        ]
    return []


def _transcript(messages: list[Any]) -> str:
    # System/developer messages are the prompt, not the call: only user turns count.
    return "\n".join(
        text
        for message in messages
        if isinstance(message, dict) and message.get("role", "user") == "user"
        for text in _texts(message.get("content"))
    )


def _content(schema: dict[str, Any] | None, transcript: str, json_mode: bool) -> str:
    facts = analyze(transcript)
    if schema is not None:
        return json.dumps(fit_to_schema(schema, facts))
    if json_mode:
        return json.dumps(facts)
    return str(facts["summary"])


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)  # roughly OpenAI's ~4 characters per token


@route("POST", r"/v1/chat/completions", "openai.chat")
def chat_completions(request: Request) -> Response:
    if (denied := _check_auth(request)) is not None:
        return denied
    try:
        body = request.json()
        messages = body["messages"]
    except (ValueError, KeyError, TypeError):
        return _error(400, "'messages' is a required property", "invalid_request")
    response_format = body.get("response_format") or {}
    schema = None
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
    transcript = _transcript(messages)
    content = _content(schema, transcript, response_format.get("type") == "json_object")
    prompt_tokens = _tokens(json.dumps(messages))
    completion_tokens = _tokens(content)
    return Response.json(
        {
            "id": f"chatcmpl-sandbox{uuid.uuid4().hex[:20]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": SIMULATED_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "service_tier": "default",
            "system_fingerprint": "fp_sandbox_rules",
        }
    )


@route("POST", r"/v1/responses", "openai.responses")
def responses(request: Request) -> Response:
    if (denied := _check_auth(request)) is not None:
        return denied
    try:
        body = request.json()
        raw_input = body["input"]
    except (ValueError, KeyError, TypeError):
        return _error(400, "'input' is a required property", "invalid_request")
    messages = [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else raw_input
    text_format = ((body.get("text") or {}).get("format")) or {"type": "text"}
    schema = text_format.get("schema") if text_format.get("type") == "json_schema" else None
    transcript = _transcript(messages if isinstance(messages, list) else [])
    content = _content(schema, transcript, text_format.get("type") == "json_object")
    input_tokens = _tokens(json.dumps(raw_input) + str(body.get("instructions") or ""))
    output_tokens = _tokens(content)
    part = {"type": "output_text", "text": content, "annotations": []}
    if request.refuse:
        # How the Responses API returns a refusal: a content part of its own, no output text.
        refusal = f"I can't help with that. ({SIMULATED_NOTE})"
        part = {"type": "refusal", "refusal": refusal}
        output_tokens = _tokens(refusal)
    return Response.json(
        {
            "id": f"resp_sandbox{uuid.uuid4().hex[:20]}",
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "model": SIMULATED_MODEL,
            "output": [
                {
                    "type": "message",
                    "id": f"msg_sandbox{uuid.uuid4().hex[:20]}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [part],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "text": {"format": text_format},
            "metadata": {"simulated": SIMULATED_NOTE},
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
        }
    )


@route("POST", r"/_sandbox/openai/revoke", "_sandbox.openai.revoke")
def revoke(request: Request) -> Response:
    """Make a key answer 401 from now on (until the next reset), as a revoked key would."""
    try:
        key = str(request.json()["key"])
    except (ValueError, KeyError, TypeError):
        return Response.error(400, 'expected {"key": "…"}')
    with request.sandbox.lock:
        request.sandbox.state["openai"].setdefault("revoked", set()).add(key)
    return Response.json({"revoked": True})
