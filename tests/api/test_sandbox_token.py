"""manage.py sandbox_token: a JWT the API accepts, minted by the running sandbox."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from integrations.sandbox.management.commands.sandbox_token import Command
from otto.models import Company


def token_for(**options) -> str:
    out = StringIO()
    # The command object itself: `integrations.sandbox` is not an installed app (yet), so
    # Django's command discovery does not list the sandbox's commands.
    call_command(Command(), stdout=out, stderr=StringIO(), **options)
    return out.getvalue().strip()


def test_the_token_is_accepted_by_the_api(clerk, acme):
    token = token_for(company="acme", role="manager", email="boss@acme.test")

    response = clerk.client(token).get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["role"] == "manager"
    assert response.json()["user"]["email"] == "boss@acme.test"


def test_v1_claims_and_other_roles(clerk, acme):
    token = token_for(company="acme", role="csr", claims_version="v1")

    assert clerk.client(token).get("/api/v1/me/").json()["role"] == "csr"


def test_a_company_without_a_clerk_org_is_refused(clerk, db):
    Company.objects.create(name="Orphan", slug="orphan")

    with pytest.raises(CommandError, match="no clerk_org_id"):
        token_for(company="orphan")


def test_an_unknown_company_is_refused(clerk, db):
    with pytest.raises(CommandError, match="No company"):
        token_for(company="nope")


def test_a_sandbox_that_is_down_is_a_clear_error(acme, settings):
    settings.SANDBOX_URL = "http://127.0.0.1:1"

    with pytest.raises(CommandError, match="not answering"):
        token_for(company="acme")


def test_wait_retries_until_the_deadline(acme, settings):
    import time

    settings.SANDBOX_URL = "http://127.0.0.1:1"
    started = time.monotonic()

    with pytest.raises(CommandError, match="not answering"):
        token_for(company="acme", wait=1.2)

    assert time.monotonic() - started >= 1.0
