"""Role matrix: who may do what. Refusals are 403 (the caller can see the tenant)."""

import pytest

from tests.api.factories import make_contact


@pytest.fixture
def members(acme_manager, acme_csr, acme_rep):
    return {"manager": acme_manager, "csr": acme_csr, "sales_rep": acme_rep}


@pytest.mark.parametrize("role", ["csr", "sales_rep"])
def test_only_managers_change_company_settings(members, role):
    client = members[role].client()

    response = client.patch("/api/v1/company/", {"name": "Hijacked"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    members[role].company.refresh_from_db()
    assert members[role].company.name == "Acme Heating"


def test_a_manager_changes_company_settings(members):
    response = (
        members["manager"]
        .client()
        .patch("/api/v1/company/", {"name": "Acme Heating & Air"}, format="json")
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Acme Heating & Air"


@pytest.mark.parametrize("role", ["manager", "csr", "sales_rep"])
def test_everyone_reads_me_and_company(members, role):
    client = members[role].client()

    assert client.get("/api/v1/me/").status_code == 200
    assert client.get("/api/v1/company/").status_code == 200


@pytest.mark.parametrize(("role", "status"), [("manager", 200), ("csr", 200), ("sales_rep", 403)])
def test_contacts_are_for_the_office(members, acme, role, status):
    contact = make_contact(acme)
    client = members[role].client()

    assert client.get("/api/v1/contacts/").status_code == status
    assert client.get(f"/api/v1/contacts/{contact.pk}/").status_code == status
    created = client.post("/api/v1/contacts/", {"phone": "303-555-0199"}, format="json")
    assert created.status_code == (201 if status == 200 else 403)
