"""manage.py sandbox_token: a JWT the API accepts, minted by the running sandbox."""

import subprocess
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


def test_curl_calls_the_web_port_not_the_processes_own(clerk, acme, settings, monkeypatch):
    # given: honcho gives the token process a PORT of its own (web 8080, token 8380)
    monkeypatch.setenv("PORT", "8380")
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8080"

    # when
    label, curl = token_for(company="acme", role="manager", curl=True).splitlines()

    # then: the curl names the app's address, and its token is one the API accepts
    token = label.rsplit(" ", 1)[1]
    assert curl == f'curl -H "Authorization: Bearer {token}" http://127.0.0.1:8080/api/v1/me/'
    assert clerk.client(token).get("/api/v1/me/").json()["role"] == "manager"


def test_make_token_prints_a_working_curl_for_the_web_port(clerk, transactional_db):
    # given: the demo tenant, and the environment `make run` hands the token process
    # (honcho's own PORT next to the web address)
    from tests.conftest import ROOT, make_company, manage_env

    make_company("Demo", "demo")
    env = manage_env(
        PORT="8380",
        PUBLIC_BASE_URL="http://127.0.0.1:8080",
        SANDBOX_URL=clerk.server.url,
        CLERK_ISSUER=f"{clerk.server.url}/clerk",
    )

    # when: `-o` keeps make from reinstalling the venv in the middle of a test
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "-o", ".venv/.installed", "token"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then: two lines, no log noise, and the curl's address is the web port
    assert done.returncode == 0, done.stderr
    label, curl = done.stdout.strip().splitlines()
    token = label.rsplit(" ", 1)[1]
    assert curl.endswith(" http://127.0.0.1:8080/api/v1/me/")
    assert f"Bearer {token}" in curl
    assert clerk.client(token).get("/api/v1/me/").status_code == 200
