"""What analysis holds on a person, for :mod:`otto.erasure`: the analyses (every version)
and analysis failures of their calls."""

from __future__ import annotations

from analysis.models import AnalysisFailure, CallAnalysis
from calls.erasure import person_calls
from otto.erasure import Erasure, Person, Rows, rows


def erase(person: Person, erasure: Erasure) -> None:
    calls = person_calls(person)
    erasure.delete(CallAnalysis.objects.filter(call__in=calls))
    erasure.delete(AnalysisFailure.objects.filter(call__in=calls))


def export(person: Person) -> dict[str, Rows]:
    calls = person_calls(person)
    return {
        "analyses": rows(CallAnalysis.objects.filter(call__in=calls)),
        "failures": rows(AnalysisFailure.objects.filter(call__in=calls)),
    }
