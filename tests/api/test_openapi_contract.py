"""The served OpenAPI schema describes what the API does: schemathesis against a live server.

A live server (pytest-django's, on the test PostgreSQL) with rate limits off, called as
Acme's manager with a token from the sandbox's Clerk issuer. For every operation
schemathesis generates requests from the schema and checks that none answers 5xx and that
every response, success or error, matches what the schema documents for that status.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from calls.search import index_call
from messaging.models import Thread
from tests.api.factories import (
    AppointmentFactory,
    CallFactory,
    ContactFactory,
    KeySignalFactory,
    LeadFactory,
    TaskFactory,
    make_followup,
)

CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture
def contract(live_server, acme_manager, settings):
    """The running API, its schema, and the manager's bearer token."""
    settings.ENABLE_RATE_LIMITING = False
    company = acme_manager.company
    contact = ContactFactory(company=company, name="Dana Whitaker")
    call = CallFactory(company=company, contact=contact, tags=["hvac"], handled_by=None)
    index_call(call.pk)
    thread = Thread.objects.create(company=company, contact=contact, phone=contact.phone)
    lead = LeadFactory(company=company, contact=contact)
    outcomes = {
        "leads": lead,
        "appointments": AppointmentFactory(company=company, lead=lead, call=call),
        "tasks": TaskFactory(company=company, contact=contact, lead=lead, call=call),
        "signals": KeySignalFactory(company=company, call=call),
        "followups": make_followup(company),
    }
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    return {
        "schema": schema,
        "url": live_server.url,
        "headers": {"Authorization": f"Bearer {acme_manager.token(lifetime=600)}"},
        "call": call,
        "contact": contact,
        "thread": thread,
        "outcomes": outcomes,
    }


SETTINGS = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_conforms(contract, mode):
    # One live server for all operations (a loop, not schemathesis' pytest plugin, whose
    # lazy fixture loader does not run under pytest 9). Routes with an id get the real
    # objects' ids half of the time, so success bodies are checked, not only 404s.
    real_ids = {
        "calls": contract["call"].pk,
        "contacts": contract["contact"].pk,
        "threads": contract["thread"].pk,
        **{collection: row.pk for collection, row in contract["outcomes"].items()},
    }
    ran = 0
    for operation in operations(contract["schema"]):
        strategies = [operation.as_strategy(generation_mode=mode)]
        if "{id}" in operation.path:
            collection = operation.path.removeprefix("/api/v1/").split("/")[0]
            strategies.append(
                operation.as_strategy(
                    generation_mode=mode, path_parameters={"id": real_ids[collection]}
                )
            )

        for strategy in strategies:

            @SETTINGS
            @given(case=strategy)
            def check(case):
                case.call_and_validate(
                    base_url=contract["url"], headers=contract["headers"], checks=CHECKS
                )

            check()
            ran += 1
    assert ran >= 13


def test_real_objects_and_errors_match_their_documented_shapes(contract):
    # Generated ids rarely name a real object; these do, so the 200 bodies (times, nested
    # contacts, stage history) are checked too, and the documented errors beside them.
    schema, url = contract["schema"], contract["url"]
    call, contact = contract["call"], contract["contact"]
    auth = contract["headers"]
    requests_made = [
        ("GET", "/api/v1/me/", "/api/v1/me/", auth, 200),
        ("GET", "/api/v1/company/", "/api/v1/company/", auth, 200),
        ("GET", "/api/v1/calls/", "/api/v1/calls/?tag=hvac", auth, 200),
        ("GET", "/api/v1/calls/{id}/", f"/api/v1/calls/{call.pk}/", auth, 200),
        ("GET", "/api/v1/contacts/", "/api/v1/contacts/?search=dana", auth, 200),
        ("GET", "/api/v1/contacts/{id}/", f"/api/v1/contacts/{contact.pk}/", auth, 200),
        (
            "GET",
            "/api/v1/contacts/{id}/timeline/",
            f"/api/v1/contacts/{contact.pk}/timeline/",
            auth,
            200,
        ),
        ("GET", "/api/v1/calls/", "/api/v1/calls/?stage=nope", auth, 400),
        ("GET", "/api/v1/calls/", "/api/v1/calls/?cursor=nope", auth, 404),
        ("GET", "/api/v1/calls/{id}/", "/api/v1/calls/999999999/", auth, 404),
        ("GET", "/api/v1/me/", "/api/v1/me/", {}, 401),
        ("POST", "/api/v1/calls/{id}/retry/", f"/api/v1/calls/{call.pk}/retry/", auth, 409),
    ]

    for method, template, path, headers, status in requests_made:
        response = requests.request(method, f"{url}{path}", headers=headers, json={}, timeout=10)

        assert response.status_code == status, (path, response.status_code, response.text)
        schema[template][method].validate_response(response)


def test_company_times_are_documented_as_clock_times_not_rfc3339(contract):
    company = contract["schema"].raw_schema["components"]["schemas"]["Company"]["properties"]

    for name in ("quiet_hours_start", "quiet_hours_end"):
        assert "format" not in company[name]
        assert company[name]["pattern"].startswith("^")
    monday = company["business_hours"]["properties"]["mon"]
    assert "format" not in monday["items"]


def test_every_operation_documents_its_errors_in_the_error_shape(contract):
    paths = contract["schema"].raw_schema["paths"]
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}

    for path, item in paths.items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"401", "403", "429"} <= set(responses), (method, path)
            if "{id}" in path:
                assert "404" in responses, (method, path)
            if method in ("post", "patch"):
                assert "400" in responses, (method, path)
            if method == "post":
                assert {"409", "422"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status >= "400":
                    assert response["content"] == error, (method, path, status)


def test_documented_request_bodies_are_ones_the_api_takes(contract):
    raw = contract["schema"].raw_schema
    paths = raw["paths"]

    # JSON only: nested fields (business_hours, lists) have no form encoding.
    for item in paths.values():
        for operation in item.values():
            if "requestBody" in operation:
                assert set(operation["requestBody"]["content"]) == {"application/json"}
    # An empty roles correction is refused, so the schema does not offer one.
    roles = paths["/api/v1/calls/{id}/transcript/roles/"]["patch"]["requestBody"]
    branches = roles["content"]["application/json"]["schema"]["anyOf"]
    assert all(branch["required"] for branch in branches)
    # The serializer checks the zone against the same database the enum lists.
    schemas = raw["components"]["schemas"]
    [ref] = schemas["PatchedCompanyRequest"]["properties"]["timezone"]["allOf"]
    zones = schemas[ref["$ref"].rsplit("/", 1)[1]]["enum"]
    assert "America/Denver" in zones
    assert "Mars/Olympus_Mons" not in zones
