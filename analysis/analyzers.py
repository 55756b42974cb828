"""Analyzers: the one interface the analysis stage calls, and the result it stores.

``submit(call, transcript)`` returns an :class:`AnalysisResult` (OpenAI: synchronous) or a
:class:`calls.providers.PendingJob` (Shunya, :mod:`analysis.shunya`: an asynchronous job,
completed later by its webhook or poller). Each provider's answer is validated into
:class:`analysis.schema.CallAnalysisOutput` at the edge, so nothing past it knows a
provider's wire format.

:func:`analyzer_for` is the only place a provider's name means anything: it maps
``Company.analyzer`` (blank: settings ``ANALYZER``) to an implementation. An analyzer that
cannot run for a company (no key configured) says why in ``check_ready``, and the
stage parks the call at ``transcribed`` with that reason instead of failing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from analysis.pricing import cost_usd
from analysis.prompt import RETRY_NOTE, Prompt, build_prompt
from analysis.schema import CallAnalysisOutput
from calls.models import Call, Transcript
from calls.providers import PendingJob
from integrations.errors import ProviderError
from integrations.openai.client import OpenAIClient, OutputError
from otto.metrics import LLM_COST, LLM_TOKENS
from otto.models import Company
from otto.queues import Queue

ANALYZERS = {
    "openai": "analysis.analyzers.OpenAIAnalyzer",
    "shunya": "analysis.shunya.ShunyaAnalyzer",
}


@dataclass(frozen=True)
class AnalysisResult:
    """A finished analysis as the provider gave it, validated, before Otto normalises it."""

    analyzer: str
    model: str
    output: CallAnalysisOutput
    input_tokens: int
    output_tokens: int
    # The utterance indices the analyzer was shown (all of them unless truncated).
    sent: frozenset[int]
    truncated: bool = False
    request_id: str = ""


class UnusableAnswer(ProviderError):
    """The analyzer answered, and was paid, but the answer cannot be stored: a refusal,
    output off the schema, citations of utterances that do not exist. Carries what it cost,
    which counts toward the company's budget (:class:`analysis.models.AnalysisFailure`)."""

    def __init__(
        self,
        provider: str,
        detail: str,
        *,
        permanent: bool,
        model: str,
        input_tokens: int,
        output_tokens: int,
    ) -> None:
        super().__init__(provider, detail, permanent=permanent)
        self.model = model
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


class AnalyzerNotAvailable(Exception):
    """The company names no analyzer Otto knows."""


class Analyzer(Protocol):
    name: str
    queue: Queue

    def check_ready(self, company: Company) -> str | None:
        """Why this analyzer cannot analyse ``company``'s calls now, or None."""
        ...

    def submit(self, call: Call, transcript: Transcript) -> AnalysisResult | PendingJob: ...


def analyzer_name(company: Company) -> str:
    return company.analyzer or settings.ANALYZER


def analyzer_for(company: Company) -> Analyzer:
    name = analyzer_name(company)
    if name not in ANALYZERS:
        raise AnalyzerNotAvailable(f"unknown analyzer {name!r}")
    return import_string(ANALYZERS[name])()


def check_citations(output: CallAnalysisOutput, sent: frozenset[int]) -> list[int]:
    """The utterance indices ``output`` points at that the analyzer was never shown."""
    cited: list[int] = [i for citation in output.citations for i in citation.utterances]
    cited += [o.utterance for o in output.objections]
    cited += [a.utterance for a in output.pending_actions if a.utterance is not None]
    return sorted({i for i in cited if i not in sent})


def prompt_for(call: Call, transcript: Transcript) -> Prompt:
    return build_prompt(
        list(transcript.utterances or []),
        started_at=call.started_at or call.created_at,
        timezone=call.company.timezone,
    )


def count_tokens(model: str, input_tokens: int, output_tokens: int) -> None:
    """Every answer's tokens and cost, used or not: they are what the provider bills."""
    LLM_TOKENS.labels(model=model, kind="input").inc(input_tokens)
    LLM_TOKENS.labels(model=model, kind="output").inc(output_tokens)
    LLM_COST.labels(model=model).inc(float(cost_usd(model, input_tokens, output_tokens)))


class OpenAIAnalyzer:
    """OpenAI structured outputs (Responses API) through :class:`OpenAIClient`, which
    rotates keys on 429 and maps 5xx and timeouts to transient errors."""

    name = "openai"
    queue = Queue.ANALYSIS

    def check_ready(self, company: Company) -> str | None:
        if not settings.OPENAI_API_KEYS:
            return "no OpenAI API key is configured (OPENAI_API_KEYS); analysis waits"
        return None

    def submit(self, call: Call, transcript: Transcript) -> AnalysisResult:
        """One analysis; a reply citing utterances that do not exist is asked again once,
        then fails the call (permanent). Unusable output (refusal, schema mismatch) counts
        as one attempt and is retried with backoff: the next answer may well be fine."""
        prompt = prompt_for(call, transcript)
        client = OpenAIClient.from_settings()
        input_tokens = output_tokens = 0
        model = client.model
        for _ in range(2):
            try:
                answer = client.parse(
                    CallAnalysisOutput, instructions=prompt.instructions, input=prompt.transcript
                )
            except OutputError as exc:
                count_tokens(exc.model or model, exc.input_tokens, exc.output_tokens)
                raise UnusableAnswer(
                    exc.provider,
                    exc.detail,
                    permanent=False,
                    model=exc.model or model,
                    input_tokens=input_tokens + exc.input_tokens,
                    output_tokens=output_tokens + exc.output_tokens,
                ) from exc
            model = answer.model
            count_tokens(model, answer.input_tokens, answer.output_tokens)
            input_tokens += answer.input_tokens
            output_tokens += answer.output_tokens
            unknown = check_citations(answer.parsed, prompt.sent)
            if not unknown:
                return AnalysisResult(
                    analyzer=self.name,
                    model=answer.model,
                    output=answer.parsed,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    sent=prompt.sent,
                    truncated=prompt.truncated,
                    request_id=answer.response_id,
                )
            prompt = prompt.with_note(RETRY_NOTE.format(indices=", ".join(map(str, unknown))))
        raise UnusableAnswer(
            self.name,
            f"citations point at no utterance of the transcript ({', '.join(map(str, unknown))})"
            " after one retry",
            permanent=True,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
