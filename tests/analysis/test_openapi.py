"""The call detail's ``analysis`` is in the served OpenAPI schema, and real analysed calls'
responses match it (the contract suite's call has no analysis)."""

from __future__ import annotations

import requests
import schemathesis

from analysis import services
from calls.models import Call
from tests.analysis.conftest import transcribed_call


def test_the_schema_describes_the_analysis_and_real_responses_match_it(
    live_server, acme, sandbox, acme_manager, worker, settings
):
    settings.ENABLE_RATE_LIMITING = False
    call = transcribed_call(acme, "price_objection")
    assert services.analyze_call(call.pk) == Call.Stage.ANALYZED
    not_yet = transcribed_call(acme, "booked")
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    auth = {"Authorization": f"Bearer {acme_manager.token(lifetime=600)}"}

    detail = schema.raw_schema["components"]["schemas"]["CallDetail"]
    assert detail["properties"]["analysis"]["allOf"] == [
        {"$ref": "#/components/schemas/CallAnalysis"}
    ]
    assert detail["properties"]["analysis"]["nullable"] is True
    assert "analysis" in detail["required"]
    for template, path in [
        ("/api/v1/calls/{id}/", f"/api/v1/calls/{call.pk}/"),
        ("/api/v1/calls/{id}/", f"/api/v1/calls/{not_yet.pk}/"),
        ("/api/v1/calls/{id}/analyses/", f"/api/v1/calls/{call.pk}/analyses/"),
        ("/api/v1/calls/{id}/analysis/", f"/api/v1/calls/{call.pk}/analysis/"),
    ]:
        response = requests.get(f"{live_server.url}{path}", headers=auth, timeout=10)
        assert response.status_code == 200, response.text
        schema[template]["GET"].validate_response(response)
    body = requests.get(f"{live_server.url}/api/v1/calls/{call.pk}/", headers=auth, timeout=10)
    assert body.json()["analysis"]["objections"][0]["category"] == "price"
