"""The analysis on the calls API: ``analysis`` in the call detail, ``calls/{id}/analyses/``
and people's corrections through ``PATCH calls/{id}/analysis/``; tenants and roles."""

from __future__ import annotations

import pytest
from django.db import transaction

from analysis import services
from analysis.models import CallAnalysis
from calls.models import Call
from tests.analysis.conftest import transcribed_call

API = "/api/v1/calls"


@pytest.fixture
def analysed(acme, sandbox) -> Call:
    call = transcribed_call(acme, "booked")
    assert services.analyze_call(call.pk) == Call.Stage.ANALYZED
    return call


def test_the_call_detail_carries_analysis_null_until_it_exists(acme, sandbox, acme_manager):
    call = transcribed_call(acme, "booked")
    client = acme_manager.client()

    assert client.get(f"{API}/{call.pk}/").json()["analysis"] is None

    services.analyze_call(call.pk)
    body = client.get(f"{API}/{call.pk}/").json()["analysis"]
    assert body["version"] == 1 and body["analyzer"] == "openai"
    assert body["booking_status"] == "booked"
    assert body["appointment"]["start"] == "2026-03-07T09:00:00-05:00"
    assert body["prompt_version"] and body["model"] and body["input_tokens"] > 0
    assert body["cost_usd"] == "0.000000"
    assert set(body["citations"]) >= {"booking_status", "appointment"}
    assert body["overrides"] == {}


def test_a_csr_corrects_a_field_and_the_correction_wins_where_read(
    analysed, acme_csr, acme_manager
):
    response = acme_csr.client().patch(
        f"{API}/{analysed.pk}/analysis/",
        {"booking_status": "not_booked", "customer_name": "Dana W."},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["booking_status"] == "not_booked"
    detail = acme_manager.client().get(f"{API}/{analysed.pk}/").json()["analysis"]
    assert (detail["booking_status"], detail["customer_name"]) == ("not_booked", "Dana W.")
    assert detail["overrides"] == {"booking_status": "not_booked", "customer_name": "Dana W."}
    row = CallAnalysis.objects.get(call=analysed)
    assert row.booking_status == "booked"  # the model's answer is kept


def test_a_correction_survives_reanalysis(analysed, acme_manager):
    client = acme_manager.client()
    client.patch(f"{API}/{analysed.pk}/analysis/", {"lead_quality": "cold"}, format="json")
    Call.objects.filter(pk=analysed.pk).update(stage=Call.Stage.TRANSCRIBED, attempts=0)
    services.analyze_call(analysed.pk)

    versions = client.get(f"{API}/{analysed.pk}/analyses/").json()
    assert [(v["version"], v["is_current"]) for v in versions] == [(2, True), (1, False)]
    assert versions[0]["lead_quality"] == "cold"
    assert client.get(f"{API}/{analysed.pk}/").json()["analysis"]["lead_quality"] == "cold"


def test_null_clears_a_correction(analysed, acme_manager):
    client = acme_manager.client()
    client.patch(f"{API}/{analysed.pk}/analysis/", {"urgency": "emergency"}, format="json")

    response = client.patch(f"{API}/{analysed.pk}/analysis/", {"urgency": None}, format="json")

    assert response.json()["overrides"] == {}
    assert response.json()["urgency"] == CallAnalysis.objects.get(call=analysed).urgency


def test_an_appointment_correction_is_validated_and_stored_as_iso(analysed, acme_manager):
    response = acme_manager.client().patch(
        f"{API}/{analysed.pk}/analysis/",
        {
            "appointment": {
                "start": "2026-03-07T11:00:00-05:00",
                "end": "2026-03-07T12:00:00-05:00",
                "address": "1420 Maple Street",
                "service_type": "AC repair",
            }
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    stored = CallAnalysis.objects.get(call=analysed).overrides["appointment"]
    assert stored["start"].startswith("2026-03-07T") and stored["address"] == "1420 Maple Street"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"booking_status": "maybe"}, "booking_status"),
        ({"sentiment": 3}, "sentiment"),
        ({"citations": {"summary": [1]}}, "citations"),
        ({"objections": [{"category": "weather", "quote": "x", "resolved": False}]}, "objections"),
    ],
)
def test_a_bad_correction_gets_the_error_shape_and_changes_nothing(
    analysed, acme_manager, body, field
):
    response = acme_manager.client().patch(f"{API}/{analysed.pk}/analysis/", body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] and field in error["details"]
    assert CallAnalysis.objects.get(call=analysed).overrides == {}


def test_an_empty_correction_is_refused(analysed, acme_manager):
    response = acme_manager.client().patch(f"{API}/{analysed.pk}/analysis/", {}, format="json")
    assert response.status_code == 400 and "error" in response.json()


def test_a_sales_rep_cannot_correct(analysed, acme_rep):
    # A rep sees only their leads' calls (none yet): not found, as for any hidden call.
    response = acme_rep.client().patch(
        f"{API}/{analysed.pk}/analysis/", {"booking_status": "not_booked"}, format="json"
    )
    assert response.status_code in (403, 404)
    assert CallAnalysis.objects.get(call=analysed).overrides == {}


def test_a_call_without_analysis_answers_404_on_analysis(acme, sandbox, acme_manager):
    call = transcribed_call(acme, "booked")
    client = acme_manager.client()

    assert client.get(f"{API}/{call.pk}/analysis/").status_code == 404
    assert (
        client.patch(f"{API}/{call.pk}/analysis/", {"qualified": False}, format="json").status_code
        == 404
    )
    assert client.get(f"{API}/{call.pk}/analyses/").json() == []


def test_the_outsider_gets_404_on_every_analysis_route(analysed, globex_manager):
    client = globex_manager.client()

    assert client.get(f"{API}/{analysed.pk}/analysis/").status_code == 404
    assert client.get(f"{API}/{analysed.pk}/analyses/").status_code == 404
    patch = client.patch(
        f"{API}/{analysed.pk}/analysis/", {"booking_status": "not_booked"}, format="json"
    )
    assert patch.status_code == 404
    assert patch.json()["error"]["code"]
    assert CallAnalysis.objects.get(call=analysed).overrides == {}


def test_the_versions_list_does_not_grow_queries_with_versions(
    analysed, acme_manager, django_assert_max_num_queries
):
    for _ in range(3):
        with transaction.atomic():
            Call.objects.filter(pk=analysed.pk).update(stage=Call.Stage.TRANSCRIBED, attempts=0)
        services.analyze_call(analysed.pk)
    client = acme_manager.client()

    with django_assert_max_num_queries(8):
        response = client.get(f"{API}/{analysed.pk}/analyses/")
    assert len(response.json()) == 4
