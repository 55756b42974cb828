"""GET and PATCH /api/v1/company/."""

import json
import logging

import httpx
import pytest

from otto.models import CallRailCompany, Company, PhoneNumber
from tests.api.factories import company_admin_form

URL = "/api/v1/company/"
MINIMUM_FIELDS = {
    "name",
    "timezone",
    "callrail_account_id",
    "callrail_company_ids",
    "tracking_numbers",
    "twilio_number",
    "quiet_hours_start",
    "quiet_hours_end",
    "transcriber",
    "analyzer",
    "callrail_api_key_set",
    "callrail_signing_key_set",
}


def test_get_returns_the_callers_company_with_the_minimum_fields(acme_manager):
    PhoneNumber.objects.create(company=acme_manager.company, number="+13035550100", kind="tracking")

    data = acme_manager.client().get(URL).json()

    assert MINIMUM_FIELDS <= set(data)
    assert data["name"] == "Acme Heating"
    assert data["tracking_numbers"] == ["+13035550100"]
    assert data["callrail_api_key_set"] is False
    assert "callrail_api_key" not in data and "callrail_signing_key" not in data


def register_callrail(sandbox, account: str, api_key: str, *company_ids: str) -> None:
    """Companies in the sandbox's CallRail account, readable with ``api_key``."""
    for company_id in company_ids:
        response = httpx.post(
            f"{sandbox.url}/_sandbox/callrail/companies",
            json={"account_id": account, "company_id": company_id, "api_key": api_key},
            timeout=10,
        )
        assert response.status_code == 201, response.text


def held(company) -> list[str]:
    return sorted(
        CallRailCompany.objects.filter(company=company).values_list(
            "callrail_company_id", flat=True
        )
    )


def test_patch_updates_settings_and_normalises_numbers(acme_manager, sandbox):
    register_callrail(sandbox, "ACC123", "acme-key", "COM1", "COM2")
    response = acme_manager.client().patch(
        URL,
        {
            "timezone": "America/Denver",
            "callrail_account_id": "ACC123",
            "callrail_api_key": "acme-key",
            "callrail_company_ids": ["COM1", "COM2"],
            "tracking_numbers": ["(303) 555-0101", "+1 303 555 0102"],
            "twilio_number": "303.555.0103",
            "quiet_hours_start": "09:00",
            "quiet_hours_end": "20:00",
            "business_hours": {"mon": ["07:30", "17:00"], "sun": []},
            "transcriber": "shunya",
            "analyzer": "shunya",
            "recovery_nudge_hours": [1, 4],
            "recovery_escalate_hours": 24,
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["tracking_numbers"] == ["+13035550101", "+13035550102"]
    assert data["twilio_number"] == "+13035550103"
    assert data["quiet_hours_start"] == "09:00"
    assert data["business_hours"] == {"mon": ["07:30", "17:00"], "sun": []}
    assert data["callrail_company_ids"] == ["COM1", "COM2"]
    company = acme_manager.company
    assert held(company) == ["COM1", "COM2"]
    kinds = dict(PhoneNumber.objects.filter(company=company).values_list("number", "kind"))
    assert kinds == {
        "+13035550101": "tracking",
        "+13035550102": "tracking",
        "+13035550103": "sending",
    }


def test_patch_replaces_the_tracking_numbers(acme_manager):
    client = acme_manager.client()
    client.patch(URL, {"tracking_numbers": ["+13035550101", "+13035550102"]}, format="json")

    response = client.patch(URL, {"tracking_numbers": ["+13035550102"]}, format="json")

    assert response.json()["tracking_numbers"] == ["+13035550102"]
    assert PhoneNumber.objects.filter(company=acme_manager.company).count() == 1


def test_a_number_another_tenant_holds_is_409(acme_manager, globex):
    PhoneNumber.objects.create(company=globex, number="+13035550101", kind="tracking")

    response = acme_manager.client().patch(
        URL, {"tracking_numbers": ["+13035550101", "+13035550102"]}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"numbers": ["+13035550101"]}
    assert not PhoneNumber.objects.filter(company=acme_manager.company).exists()


def test_invalid_numbers_and_time_zones_are_400(acme_manager):
    client = acme_manager.client()

    bad_number = client.patch(URL, {"tracking_numbers": ["12"]}, format="json")
    bad_zone = client.patch(URL, {"timezone": "Mars/Olympus"}, format="json")
    twice = client.patch(URL, {"tracking_numbers": ["3035550101", "+13035550101"]}, format="json")

    assert bad_number.status_code == bad_zone.status_code == twice.status_code == 400
    assert "tracking_numbers" in bad_number.json()["error"]["details"]
    assert "timezone" in bad_zone.json()["error"]["details"]


def test_the_twilio_number_cannot_also_be_a_tracking_number(acme_manager):
    response = acme_manager.client().patch(
        URL, {"tracking_numbers": ["+13035550101"], "twilio_number": "+13035550101"}, format="json"
    )

    assert response.status_code == 400


def test_secrets_are_write_only_and_encrypted(acme_manager, caplog):
    caplog.set_level(logging.DEBUG)
    client = acme_manager.client()

    response = client.patch(
        URL,
        {"callrail_api_key": "cr-api-TOPSECRET-1", "callrail_signing_key": "cr-sign-TOPSECRET-2"},
        format="json",
    )

    assert response.status_code == 200
    for body in (response.content, client.get(URL).content):
        assert b"TOPSECRET" not in body
    assert response.json()["callrail_api_key_set"] is True
    assert response.json()["callrail_signing_key_set"] is True
    company = Company.objects.get(pk=acme_manager.company.pk)
    assert company.callrail_api_key.reveal() == "cr-api-TOPSECRET-1"
    assert "TOPSECRET" not in repr(company.callrail_api_key) + str(company.callrail_signing_key)
    assert "TOPSECRET" not in repr(company.__dict__)
    raw = Company.objects.filter(pk=company.pk).values_list("callrail_api_key", flat=True)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT callrail_api_key FROM otto_company WHERE id = %s", [company.pk])
        assert "TOPSECRET" not in cursor.fetchone()[0]
    assert raw  # the ORM reads it back as a Secret, never the ciphertext
    assert "TOPSECRET" not in caplog.text


def test_a_blank_secret_clears_it(acme_manager):
    client = acme_manager.client()
    client.patch(URL, {"callrail_api_key": "cr-api-1"}, format="json")

    response = client.patch(URL, {"callrail_api_key": ""}, format="json")

    assert response.json()["callrail_api_key_set"] is False


def test_the_admin_change_page_never_shows_a_secret(admin_client, acme_manager):
    client = acme_manager.client()
    client.patch(URL, {"callrail_api_key": "cr-api-TOPSECRET-1"}, format="json")

    page = admin_client.get(f"/admin/otto/company/{acme_manager.company.pk}/change/")

    assert page.status_code == 200
    assert b"TOPSECRET" not in page.content
    assert b"not set" in page.content  # the signing key
    company = Company.objects.get(pk=acme_manager.company.pk)
    ciphertext = Company._meta.get_field("callrail_api_key").get_prep_value(
        company.callrail_api_key
    )
    assert ciphertext[:10].encode() not in page.content


def test_the_admin_sets_a_secret_through_a_write_only_input(admin_client, acme):
    page = admin_client.get(f"/admin/otto/company/{acme.pk}/change/")
    assert b'name="new_callrail_api_key"' in page.content

    data = company_admin_form(admin_client, acme, new_callrail_api_key="cr-admin-TOPSECRET")
    response = admin_client.post(f"/admin/otto/company/{acme.pk}/change/", data)

    assert response.status_code == 302, response.content[:2000]
    acme.refresh_from_db()
    assert acme.callrail_api_key.reveal() == "cr-admin-TOPSECRET"
    assert acme.callrail_signing_key is None


# --- CallRail company ids: one tenant each, verified with the tenant's own key ------------


@pytest.fixture
def acme_on_callrail(acme_manager, sandbox):
    """Acme's own CallRail key and account, listing COM1 and COM2."""
    register_callrail(sandbox, "ACC-acme", "acme-key", "COM1", "COM2")
    response = acme_manager.client().patch(
        URL, {"callrail_account_id": "ACC-acme", "callrail_api_key": "acme-key"}, format="json"
    )
    assert response.status_code == 200, response.content
    return acme_manager


def test_ids_the_key_lists_are_claimed_and_served_as_a_list(acme_on_callrail, sandbox):
    client = acme_on_callrail.client()

    response = client.patch(URL, {"callrail_company_ids": ["COM2", "COM1"]}, format="json")

    assert response.status_code == 200, response.content
    assert client.get(URL).json()["callrail_company_ids"] == ["COM1", "COM2"]
    assert held(acme_on_callrail.company) == ["COM1", "COM2"]
    listed = sandbox.recorded("callrail.companies.list")
    assert listed and listed[-1]["path"] == "/v3/a/ACC-acme/companies.json"


def test_an_id_another_tenant_holds_is_409_and_nothing_changes(acme_on_callrail, globex, sandbox):
    CallRailCompany.objects.create(company=globex, callrail_company_id="COM1")

    response = acme_on_callrail.client().patch(
        URL, {"callrail_company_ids": ["COM1", "COM2"], "timezone": "America/Denver"}, format="json"
    )

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "callrail_company_taken"
    assert error["details"] == {"callrail_company_ids": ["COM1"]}
    # nothing names the tenant that holds it (the request id is random hex, so the check
    # reads the error without it: a bare pk could appear in it by chance)
    named = json.dumps({key: value for key, value in error.items() if key != "request_id"})
    for revealing in (globex.name, globex.slug, f"company {globex.pk}", f'"{globex.pk}"'):
        assert revealing not in named
    assert held(acme_on_callrail.company) == []
    assert Company.objects.get(pk=acme_on_callrail.company.pk).timezone == "America/New_York"
    assert CallRailCompany.objects.get(callrail_company_id="COM1").company == globex


def test_the_unique_constraint_decides_a_race_for_an_id(acme_on_callrail, globex, monkeypatch):
    # given another tenant claims COM1 between the check and the insert
    from otto import selectors

    real = selectors.callrail_ids_held_elsewhere
    calls = []

    def racing(company, ids):
        calls.append(ids)
        if len(calls) == 1:
            CallRailCompany.objects.create(company=globex, callrail_company_id="COM1")
            return []
        return real(company, ids)

    monkeypatch.setattr(selectors, "callrail_ids_held_elsewhere", racing)

    response = acme_on_callrail.client().patch(
        URL, {"callrail_company_ids": ["COM1", "COM2"], "timezone": "America/Denver"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"callrail_company_ids": ["COM1"]}
    assert held(acme_on_callrail.company) == []
    assert Company.objects.get(pk=acme_on_callrail.company.pk).timezone == "America/New_York"


def test_an_id_the_tenants_key_does_not_list_is_422(acme_on_callrail, sandbox):
    register_callrail(sandbox, "ACC-victim", "victim-key", "COM-VICTIM")

    response = acme_on_callrail.client().patch(
        URL, {"callrail_company_ids": ["COM1", "COM-VICTIM"]}, format="json"
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "callrail_company_not_listed"
    assert error["details"] == {"callrail_company_ids": ["COM-VICTIM"]}
    assert held(acme_on_callrail.company) == []


def test_a_new_legacy_numeric_id_is_refused(acme_on_callrail, sandbox):
    response = acme_on_callrail.client().patch(
        URL, {"callrail_company_ids": ["COM1", 155920786]}, format="json"
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "callrail_company_id_legacy"
    assert held(acme_on_callrail.company) == []


def test_a_legacy_id_held_from_before_is_kept(acme_on_callrail, sandbox):
    CallRailCompany.objects.create(
        company=acme_on_callrail.company, callrail_company_id="155920786"
    )

    response = acme_on_callrail.client().patch(
        URL, {"callrail_company_ids": ["155920786", "COM1"]}, format="json"
    )

    assert response.status_code == 200, response.content
    assert held(acme_on_callrail.company) == ["155920786", "COM1"]


def test_claiming_an_id_without_a_key_of_its_own_is_422(acme_manager, sandbox, settings):
    # the deployment's key is configured, but it never vouches for a tenant's claim
    register_callrail(sandbox, settings.CALLRAIL_ACCOUNT_ID, "other", "COM0000sandbox")

    response = acme_manager.client().patch(
        URL,
        {"callrail_account_id": settings.CALLRAIL_ACCOUNT_ID, "callrail_company_ids": ["COM1"]},
        format="json",
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "callrail_api_key_required"
    assert held(acme_manager.company) == []
    assert sandbox.recorded("callrail.companies.list") == []


def test_a_key_callrail_refuses_for_the_account_is_422(acme_manager, sandbox):
    register_callrail(sandbox, "ACC-acme", "acme-key", "COM1")

    response = acme_manager.client().patch(
        URL,
        {
            "callrail_account_id": "ACC-someone-else",
            "callrail_api_key": "acme-key",
            "callrail_company_ids": ["COM1"],
        },
        format="json",
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "callrail_credentials_refused"
    company = Company.objects.get(pk=acme_manager.company.pk)
    assert company.callrail_account_id == "" and company.callrail_api_key is None


@pytest.mark.parametrize("mode", ["500", "429"])
def test_callrail_unreachable_is_503_with_retry_after_and_nothing_changes(
    acme_on_callrail, sandbox, mode
):
    sandbox.inject("callrail.companies.list", mode, count=5)

    response = acme_on_callrail.client().patch(
        URL, {"callrail_company_ids": ["COM1"], "timezone": "America/Denver"}, format="json"
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "callrail_unavailable"
    assert int(response["Retry-After"]) >= 1
    assert held(acme_on_callrail.company) == []
    assert Company.objects.get(pk=acme_on_callrail.company.pk).timezone == "America/New_York"


def test_ids_already_held_are_not_asked_again_until_the_key_changes(acme_on_callrail, sandbox):
    client = acme_on_callrail.client()
    client.patch(URL, {"callrail_company_ids": ["COM1"]}, format="json")
    asked = len(sandbox.recorded("callrail.companies.list"))

    assert client.patch(URL, {"timezone": "America/Denver"}, format="json").status_code == 200
    assert len(sandbox.recorded("callrail.companies.list")) == asked

    # a key for another account no longer vouches for COM1: refused, nothing changes
    register_callrail(sandbox, "ACC-other", "other-key", "COM9")
    response = client.patch(
        URL, {"callrail_api_key": "other-key", "callrail_account_id": "ACC-other"}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "callrail_company_not_listed"
    assert Company.objects.get(pk=acme_on_callrail.company.pk).callrail_account_id == "ACC-acme"


def test_the_outsider_sees_none_of_acmes_callrail_ids(acme_on_callrail, globex_manager):
    acme_on_callrail.client().patch(URL, {"callrail_company_ids": ["COM1"]}, format="json")

    data = globex_manager.client().get(URL).json()

    assert data["callrail_company_ids"] == []
    assert data["callrail_account_id"] == ""


# --- the admin writes through update_company too -----------------------------------------


def test_an_admin_edit_of_the_twilio_number_updates_the_phone_numbers(admin_client, acme):
    response = admin_client.post(
        f"/admin/otto/company/{acme.pk}/change/",
        company_admin_form(admin_client, acme, twilio_number="303.555.0103"),
    )

    assert response.status_code == 302, response.content[:3000]
    acme.refresh_from_db()
    assert acme.twilio_number == "+13035550103"
    sending = PhoneNumber.objects.filter(company=acme, kind=PhoneNumber.Kind.SENDING)
    assert list(sending.values_list("number", flat=True)) == ["+13035550103"]

    admin_client.post(
        f"/admin/otto/company/{acme.pk}/change/",
        company_admin_form(admin_client, acme, twilio_number="+13035550104"),
    )
    assert list(sending.values_list("number", flat=True)) == ["+13035550104"]


def test_an_admin_edit_to_a_number_another_tenant_holds_is_a_form_error(admin_client, acme, globex):
    PhoneNumber.objects.create(company=globex, number="+13035550103", kind="sending")

    response = admin_client.post(
        f"/admin/otto/company/{acme.pk}/change/",
        company_admin_form(
            admin_client, acme, twilio_number="+13035550103", timezone="America/Denver"
        ),
    )

    assert response.status_code == 200
    assert b"+13035550103" in response.content and b"another tenant" in response.content
    acme.refresh_from_db()
    assert acme.twilio_number == "" and acme.timezone == "America/New_York"
    assert not PhoneNumber.objects.filter(company=acme).exists()


def test_an_admin_claim_of_another_tenants_callrail_id_is_a_form_error(admin_client, acme, globex):
    CallRailCompany.objects.create(company=globex, callrail_company_id="COM1")

    response = admin_client.post(
        f"/admin/otto/company/{acme.pk}/change/",
        company_admin_form(admin_client, acme, callrail_company_ids="COM1"),
    )

    assert response.status_code == 200
    assert b"Held by another tenant: COM1" in response.content
    assert held(acme) == []


def test_an_admin_claim_is_checked_with_the_tenants_own_key(admin_client, acme, sandbox):
    register_callrail(sandbox, "ACC-acme", "acme-key", "COM1")
    form = company_admin_form(
        admin_client,
        acme,
        callrail_account_id="ACC-acme",
        new_callrail_api_key="acme-key",
        callrail_company_ids="COM1, COM-NOT-LISTED",
    )

    refused = admin_client.post(f"/admin/otto/company/{acme.pk}/change/", form)
    assert refused.status_code == 200 and b"COM-NOT-LISTED" in refused.content
    assert held(acme) == []

    accepted = admin_client.post(
        f"/admin/otto/company/{acme.pk}/change/", form | {"callrail_company_ids": "COM1"}
    )
    assert accepted.status_code == 302, accepted.content[:3000]
    assert held(acme) == ["COM1"]


def test_clearing_the_key_keeps_the_ids_without_asking_callrail(acme_on_callrail, sandbox):
    client = acme_on_callrail.client()
    client.patch(URL, {"callrail_company_ids": ["COM1"]}, format="json")
    asked = len(sandbox.recorded("callrail.companies.list"))

    response = client.patch(URL, {"callrail_api_key": ""}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["callrail_api_key_set"] is False
    assert held(acme_on_callrail.company) == ["COM1"]
    assert len(sandbox.recorded("callrail.companies.list")) == asked
