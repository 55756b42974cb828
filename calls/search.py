"""Full-text search over calls: the redacted transcript, the customer's name and the
CallRail tags, in one PostgreSQL ``tsvector`` per call (``Call.search_vector``, GIN index).

:func:`index_call` runs on queue ``indexing`` after transcription and whenever CallRail
changes a call's details, so search never waits on a request. :func:`search` filters and
ranks: the name and tags weigh more than words said in the call. On the SQLite default
there is no ``tsvector``: the same filter falls back to a case-insensitive match, unranked.
"""

from __future__ import annotations

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import BigIntegerField, F, Q, QuerySet, TextField, Value
from django.db.models.functions import Cast

from calls.models import Call, Transcript

CONFIG = "english"
RANK_SCALE = 1_000_000


def index_call(call_id: int) -> None:
    """Recompute one call's search vector from what is stored now (idempotent)."""
    if connection.vendor != "postgresql":
        return
    call = Call.objects.filter(pk=call_id).only("customer_name", "tags").first()
    if call is None:
        return
    text = Transcript.objects.filter(call_id=call_id).values_list("text", flat=True).first()
    tags = " ".join(str(tag) for tag in call.tags or [])

    def vector(value: str, weight: str) -> SearchVector:
        return SearchVector(Value(value, output_field=TextField()), weight=weight, config=CONFIG)

    Call.objects.filter(pk=call_id).update(
        search_vector=vector(call.customer_name, "A") + vector(tags, "A") + vector(text or "", "B")
    )


def search(calls: QuerySet[Call], terms: str) -> QuerySet[Call]:
    """``calls`` matching ``terms`` (web-search syntax: words, "phrases", -excluded), with
    a ``rank`` annotation, best first."""
    if connection.vendor != "postgresql":
        match = Q(customer_name__icontains=terms) | Q(transcript__text__icontains=terms)
        return calls.filter(match).annotate(rank=Value(RANK_SCALE, output_field=BigIntegerField()))
    query = SearchQuery(terms, search_type="websearch", config=CONFIG)
    # An integer rank (millionths): the list's cursor compares ranks exactly, which a
    # float4 rank round-tripped through its text form does not.
    rank = Cast(SearchRank(F("search_vector"), query) * RANK_SCALE, BigIntegerField())
    return calls.filter(search_vector=query).annotate(rank=rank)
