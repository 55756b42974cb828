"""Who handled a call: CallRail's ``agent_email``, matched case-insensitively to an active
member of the call's own company, sets ``Call.handled_by`` when the call is ingested."""

from __future__ import annotations

import logging

from django.utils import timezone

from calls import services
from otto.models import Membership, User
from tests.calls.test_ingest import new_call

# The sandbox's CallRail reports every answered call as handled by this agent.
AGENT_EMAIL = "csr@sandbox.example.com"


def member(company, email: str, role: str = "csr", **fields) -> User:
    user = User.objects.create(username=f"{company.slug}-{email}", email=email)
    Membership.objects.create(user=user, company=company, role=role, **fields)
    return user


def ingested(company, sandbox, run_tasks, **spec):
    call = new_call(company, sandbox, **spec)
    with run_tasks():
        services.ingest_call(call.pk)
    call.refresh_from_db()
    return call


def test_the_agent_email_matches_a_member_of_the_tenant_in_any_case(
    acme_callrail, sandbox, run_tasks
):
    csr = member(acme_callrail, "CSR@Sandbox.Example.com")

    call = ingested(acme_callrail, sandbox, run_tasks, scenario="booked")

    assert call.handled_by == csr


def test_a_user_of_another_tenant_with_the_same_email_is_not_matched(
    acme_callrail, globex, sandbox, run_tasks, caplog
):
    member(globex, AGENT_EMAIL)

    with caplog.at_level(logging.INFO, logger="calls.services.details"):
        call = ingested(acme_callrail, sandbox, run_tasks, scenario="booked")

    assert call.handled_by is None
    assert any("matches no member" in r.getMessage() for r in caplog.records)


def test_a_revoked_member_is_not_matched(acme_callrail, sandbox, run_tasks):
    member(acme_callrail, AGENT_EMAIL, revoked_at=timezone.now())

    call = ingested(acme_callrail, sandbox, run_tasks, scenario="booked")

    assert call.handled_by is None


def test_a_missed_call_has_no_handler(acme_callrail, sandbox, run_tasks):
    member(acme_callrail, AGENT_EMAIL)

    call = ingested(acme_callrail, sandbox, run_tasks, scenario="booked", missed=True)

    assert call.handled_by is None
