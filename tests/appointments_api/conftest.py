"""Fixtures for the outcomes API: a second sales rep of Acme, and response helpers."""

from __future__ import annotations

import pytest

from otto.models import Membership, User
from tests.conftest import Member


@pytest.fixture
def acme_rep2(acme, clerk) -> Member:
    """Another of Acme's sales reps (the first is ``acme_rep``)."""
    user = User.objects.create(
        username="user_acme_rep2",
        clerk_user_id="user_acme_rep2",
        email="rep2@acme.example.com",
        name="Acme second rep",
    )
    return Member(Membership.objects.create(user=user, company=acme, role="sales_rep"), clerk)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]
