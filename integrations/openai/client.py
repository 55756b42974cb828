"""OpenAI structured output through the official SDK, with Otto's own key rotation.

The SDK's retries are off (``max_retries=0``): a 429 is a property of one key, so the
right reaction is to cool that key down and try the next one (see :mod:`.keys`), not to
sleep and hammer the same key. 5xx and timeouts are not key-related: they surface at once
as transient ``ProviderError`` and the pipeline's backoff decides when to retry.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import openai
import pydantic
from django.conf import settings

from integrations.errors import ProviderError, track
from integrations.openai.keys import KeyRing, fingerprint, get_keyring

logger = logging.getLogger(__name__)

PROVIDER = "openai"
Api = Literal["responses", "chat"]


class OutputError(ProviderError):
    """The API answered, but not with usable output: a refusal, a body that is not JSON or
    does not match the schema. Permanent for this request; a caller whose model output is
    not deterministic (an LLM) may count it as one attempt and ask again. The answer was
    billed all the same: ``model`` and the tokens say what it cost (0 when the body did not
    say)."""

    def __init__(
        self, detail: str, *, model: str = "", input_tokens: int = 0, output_tokens: int = 0
    ) -> None:
        super().__init__(PROVIDER, detail, permanent=True)
        self.model = model
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


@dataclass(frozen=True)
class StructuredResult[T: pydantic.BaseModel]:
    """A parsed structured answer and what it cost."""

    parsed: T
    model: str
    input_tokens: int
    output_tokens: int
    total_tokens: int
    response_id: str


@functools.lru_cache(maxsize=8)
def _sdk_client(base_url: str, timeout: float) -> openai.OpenAI:
    # One SDK client (and connection pool) per configuration; each key gets a cheap
    # ``with_options`` copy that shares the pool.
    return openai.OpenAI(
        api_key="unused-placeholder", base_url=base_url, timeout=timeout, max_retries=0
    )


class OpenAIClient:
    def __init__(
        self,
        *,
        base_url: str,
        keyring: KeyRing,
        model: str,
        timeout: float,
    ) -> None:
        self.base_url = base_url
        self.keyring = keyring
        self.model = model
        self.timeout = timeout

    @classmethod
    def from_settings(cls) -> OpenAIClient:
        return cls(
            base_url=settings.OPENAI_BASE_URL,
            keyring=get_keyring(settings.OPENAI_API_KEYS, settings.OPENAI_KEY_ROTATION_STRATEGY),
            model=settings.OPENAI_MODEL,
            timeout=float(settings.PROVIDER_TIMEOUTS["openai"]),
        )

    def parse[T: pydantic.BaseModel](
        self,
        schema: type[T],
        *,
        instructions: str,
        input: str,
        model: str | None = None,
        api: Api = "responses",
    ) -> StructuredResult[T]:
        """Ask for ``schema``-shaped output; the SDK validates it into a ``schema`` instance.

        ``api="responses"`` uses ``responses.parse`` (text.format json_schema);
        ``api="chat"`` uses ``chat.completions.parse`` (response_format json_schema).
        """
        with track(PROVIDER, f"parse.{api}"):
            # Each 429/401 removes one key from play, so len(keys) attempts bound the loop.
            for _ in range(max(1, len(self.keyring))):
                key = self.keyring.acquire()  # raises once every key is cooling or dead
                sdk = _sdk_client(self.base_url, self.timeout).with_options(api_key=key)
                try:
                    if api == "chat":
                        return self._chat(sdk, schema, instructions, input, model or self.model)
                    return self._responses(sdk, schema, instructions, input, model or self.model)
                except openai.RateLimitError as exc:
                    self.keyring.cool_down(key, _retry_after(exc.response))
                except openai.AuthenticationError:
                    self.keyring.revoke(key)
                except openai.APIStatusError as exc:
                    raise ProviderError.from_status(
                        PROVIDER, exc.status_code, _detail(exc), _retry_after(exc.response)
                    ) from exc
                except openai.APITimeoutError as exc:
                    raise ProviderError(PROVIDER, "request timed out", permanent=False) from exc
                except openai.APIConnectionError as exc:
                    raise ProviderError(
                        PROVIDER, f"connection failed: {exc}", permanent=False
                    ) from exc
                except openai.LengthFinishReasonError as exc:
                    raise ProviderError(
                        PROVIDER, "output truncated at the token limit", permanent=True
                    ) from exc
                except openai.ContentFilterFinishReasonError as exc:
                    raise ProviderError(
                        PROVIDER, "output blocked by content filter", permanent=True
                    ) from exc
                except pydantic.ValidationError as exc:
                    raise OutputError(_mismatch(schema, exc)) from exc
                except (openai.APIResponseValidationError, ValueError) as exc:
                    # A body that is not JSON or not the API's shape (ValueError covers
                    # JSONDecodeError). Like every unusable body it is permanent
                    # (integrations/errors.py): recorded for ops, not retried blindly.
                    raise OutputError(f"malformed response body: {type(exc).__name__}") from exc
            raise self._exhausted()

    def _exhausted(self) -> ProviderError:
        error = self.keyring.unavailable()
        if error is not None:
            return error
        # Every attempt hit a 429/401, yet a key is usable again already (a very short
        # Retry-After): let the caller's backoff retry rather than loop here.
        return ProviderError(PROVIDER, "rate limited on every attempt", permanent=False, status=429)

    def _chat[T: pydantic.BaseModel](
        self, sdk: openai.OpenAI, schema: type[T], instructions: str, text: str, model: str
    ) -> StructuredResult[T]:
        completion = sdk.chat.completions.parse(
            model=model,
            messages=[
                {"role": "system", "content": instructions},
                {"role": "user", "content": text},
            ],
            response_format=schema,
        )
        if not completion.choices:
            raise ProviderError(PROVIDER, "response has no choices", permanent=True)
        message = completion.choices[0].message
        if message.parsed is None:
            raise OutputError(f"model refused: {message.refusal}")
        usage = completion.usage
        return StructuredResult(
            parsed=message.parsed,
            model=completion.model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            total_tokens=usage.total_tokens if usage else 0,
            response_id=completion.id,
        )

    def _responses[T: pydantic.BaseModel](
        self, sdk: openai.OpenAI, schema: type[T], instructions: str, text: str, model: str
    ) -> StructuredResult[T]:
        # The raw response, so that output off the schema still tells what it cost.
        raw = sdk.responses.with_raw_response.parse(
            model=model, instructions=instructions, input=text, text_format=schema
        )
        try:
            response = raw.parse()
        except pydantic.ValidationError as exc:
            raise OutputError(_mismatch(schema, exc), **_billed(raw.http_response)) from exc
        parsed = response.output_parsed
        usage = response.usage
        if parsed is None:
            raise OutputError(
                f"no parsed output (status {response.status}){_refusal(response)}",
                model=response.model,
                input_tokens=usage.input_tokens if usage else 0,
                output_tokens=usage.output_tokens if usage else 0,
            )
        return StructuredResult(
            parsed=parsed,
            model=response.model,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            total_tokens=usage.total_tokens if usage else 0,
            response_id=response.id,
        )


def _mismatch(schema: type[pydantic.BaseModel], exc: pydantic.ValidationError) -> str:
    first = exc.errors()[0]
    return (
        f"response does not match {schema.__name__}: {exc.error_count()} error(s), "
        f"first: {first['loc']} {first['msg']}"
    )


def _billed(http_response: Any) -> dict[str, Any]:
    """The model and token counts of a Responses API body the SDK could not parse."""
    try:
        body = http_response.json()
        usage = body.get("usage") or {}
        return {
            "model": str(body.get("model") or ""),
            "input_tokens": int(usage.get("input_tokens") or 0),
            "output_tokens": int(usage.get("output_tokens") or 0),
        }
    except (ValueError, TypeError, AttributeError):
        return {}


def _refusal(response: Any) -> str:
    # The Responses API puts a refusal in the message's content, not in output_parsed.
    for item in getattr(response, "output", None) or []:
        for part in getattr(item, "content", None) or []:
            if getattr(part, "type", "") == "refusal":
                return f": model refused: {getattr(part, 'refusal', '')}"
    return ""


def _retry_after(response: Any) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (delta or HTTP date), if any."""
    headers = getattr(response, "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _detail(exc: openai.APIStatusError) -> str:
    # The API's own error text when the body has one (the SDK's message falls back to
    # "Error code: N" for bodies not in OpenAI's shape); the request id helps support.
    error = exc.body.get("error", exc.body) if isinstance(exc.body, dict) else exc.body
    message = error.get("message") if isinstance(error, dict) else error
    request_id = getattr(exc, "request_id", None)
    return f"{message or exc.message}" + (f" [request {request_id}]" if request_id else "")


__all__ = ["OpenAIClient", "OutputError", "StructuredResult", "fingerprint"]
