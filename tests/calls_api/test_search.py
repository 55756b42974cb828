"""GET /api/v1/calls/?search=: the redacted transcript, the customer's name and the tags,
ranked, within the caller's tenant, and served by the GIN index."""

from __future__ import annotations

from django.db import connection

from calls import pipeline, search
from calls.models import Call, Transcript
from calls.redaction import redact_text
from tests.api.factories import CallFactory

URL = "/api/v1/calls/"


def transcribed(company, text: str, **fields) -> Call:
    """A call as transcription leaves it, indexed as the `indexing` task would."""
    call = CallFactory(company=company, stage=Call.Stage.TRANSCRIBED, **fields)
    Transcript.objects.create(
        company=company, call=call, text=redact_text(text).text, provider="deepgram"
    )
    search.index_call(call.pk)
    return call


def found(client, terms: str, **params) -> list[int]:
    response = client.get(URL, {"search": terms, **params})
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_words_said_in_the_call_find_it(acme_csr):
    furnace = transcribed(acme_csr.company, "My furnace is making a banging noise.")
    transcribed(acme_csr.company, "I'd like a quote for a new roof.")

    assert found(acme_csr.client(), "furnace") == [furnace.pk]
    # stemming: "furnaces" and "banged" match "furnace" and "banging"
    assert found(acme_csr.client(), "furnaces banged") == [furnace.pk]


def test_the_customer_name_and_tags_weigh_more_than_words_in_passing(acme_csr):
    mention = transcribed(acme_csr.company, "Whitaker referred me; my AC is out.")
    named = transcribed(acme_csr.company, "Hello?", customer_name="Dana Whitaker")
    tagged = transcribed(acme_csr.company, "Price question.", tags=["Whitaker-Promo"])

    result = found(acme_csr.client(), "whitaker")

    assert set(result) == {mention.pk, named.pk, tagged.pk}
    assert result[-1] == mention.pk


def test_web_search_syntax_phrases_and_exclusions(acme_csr):
    water = transcribed(acme_csr.company, "The water heater is leaking.")
    transcribed(acme_csr.company, "The heater works but the water pipe is leaking.")

    assert found(acme_csr.client(), '"water heater"') == [water.pk]
    assert water.pk not in found(acme_csr.client(), "leaking -heater")


def test_a_card_number_said_on_the_call_is_not_searchable(acme_csr):
    transcribed(acme_csr.company, "My card number is 4111 1111 1111 1111.")

    assert found(acme_csr.client(), "4111") == []
    assert len(found(acme_csr.client(), "card")) == 1


def test_another_tenants_calls_are_never_found(acme_csr, globex_manager):
    transcribed(globex_manager.company, "My furnace is out.")

    assert found(acme_csr.client(), "furnace") == []


def test_search_combines_with_filters_and_pages_without_gaps(acme_csr):
    calls = [
        transcribed(acme_csr.company, f"The furnace {'furnace ' * n}again.", answered=n % 2 == 0)
        for n in range(7)
    ]
    client = acme_csr.client()

    seen, url = [], f"{URL}?search=furnace&page_size=2"
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]

    assert sorted(seen) == sorted(call.pk for call in calls)  # every match once
    answered = found(client, "furnace", answered="true")
    assert sorted(answered) == sorted(c.pk for c in calls if c.answered)


def test_a_blank_search_is_the_plain_list(acme_csr):
    older = transcribed(acme_csr.company, "one")
    newer = transcribed(acme_csr.company, "two")

    assert found(acme_csr.client(), "  ") == [newer.pk, older.pk]


def test_the_search_uses_the_gin_index(acme_csr):
    # a tenant with thousands of calls, three of them about a furnace
    company = acme_csr.company
    Call.objects.bulk_create(
        CallFactory.build(company=company, customer_name="Pat Caller") for _ in range(3000)
    )
    for _ in range(3):
        transcribed(company, "The furnace is out.")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE calls_call SET search_vector = to_tsvector('english', customer_name) "
            "WHERE search_vector IS NULL"
        )
        cursor.execute("ANALYZE calls_call")

    plan = search.search(Call.objects.filter(company=company), "furnace").explain()

    assert "calls_search_gin" in plan


def test_transcription_hands_the_call_to_indexing(acme, django_capture_on_commit_callbacks):
    call = CallFactory(company=acme, stage=Call.Stage.TRANSCRIBED)

    with django_capture_on_commit_callbacks() as callbacks:
        pipeline.hand_off(call)

    # indexing first; the stage's registered handler (analysis) enqueues its own task
    pushed = [(c.args[0], c.args[1], c.args[2]) for c in callbacks]
    assert pushed[0] == ("indexing", "calls.tasks.index_call", (call.pk,))
