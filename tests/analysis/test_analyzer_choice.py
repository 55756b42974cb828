"""``ANALYZER`` per company, deployment default (DESIGN §2): a company that names no
analyzer follows the setting; one that names one keeps it."""

from __future__ import annotations

from analysis.analyzers import analyzer_for, analyzer_name
from otto.models import Company


def test_a_new_company_follows_the_deployment_default(settings):
    settings.ANALYZER = "shunya"
    company = Company(name="Acme")

    assert company.analyzer == ""
    assert analyzer_name(company) == "shunya" and analyzer_for(company).name == "shunya"


def test_a_company_that_names_its_analyzer_keeps_it(settings):
    settings.ANALYZER = "shunya"

    assert analyzer_name(Company(name="Acme", analyzer="openai")) == "openai"


def test_a_manager_sets_the_analyzer_back_to_the_default(acme, acme_manager):
    acme.analyzer = "shunya"
    acme.save()

    response = acme_manager.client().patch("/api/v1/company/", {"analyzer": ""}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["analyzer"] == ""
    acme.refresh_from_db()
    assert acme.analyzer == ""
