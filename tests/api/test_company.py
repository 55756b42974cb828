"""GET and PATCH /api/v1/company/."""

import logging

from otto.models import Company, PhoneNumber

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


def test_patch_updates_settings_and_normalises_numbers(acme_manager):
    response = acme_manager.client().patch(
        URL,
        {
            "timezone": "America/Denver",
            "callrail_account_id": "ACC123",
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
    company = acme_manager.company
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

    data = {
        "name": acme.name,
        "slug": acme.slug,
        "clerk_org_id": acme.clerk_org_id,
        "is_active": "on",
        "timezone": acme.timezone,
        "quiet_hours_start": "08:00",
        "quiet_hours_end": "21:00",
        "business_hours": "{}",
        "transcriber": "deepgram",
        "analyzer": "openai",
        "recovery_enabled": "on",
        "recovery_nudge_hours": "[2, 10, 24]",
        "recovery_escalate_hours": "48",
        "callrail_company_ids": "[]",
        "new_callrail_api_key": "cr-admin-TOPSECRET",
        "phone_numbers-TOTAL_FORMS": "0",
        "phone_numbers-INITIAL_FORMS": "0",
    }
    response = admin_client.post(f"/admin/otto/company/{acme.pk}/change/", data)

    assert response.status_code == 302, response.content[:2000]
    acme.refresh_from_db()
    assert acme.callrail_api_key.reveal() == "cr-admin-TOPSECRET"
    assert acme.callrail_signing_key is None
