"""Company times of day: "HH:MM" in the company's zone, served and accepted as documented."""

import datetime

import pytest

from otto.serializers import CLOCK_TIME_PATTERN

URL = "/api/v1/company/"


def test_times_are_served_as_hh_mm(acme_manager):
    data = acme_manager.client().get(URL).json()

    assert data["quiet_hours_start"] == "08:00"
    assert data["quiet_hours_end"] == "21:00"
    assert data["business_hours"]["mon"] == ["08:00", "18:00"]


def test_seconds_are_accepted_and_kept_for_quiet_hours(acme_manager):
    response = acme_manager.client().patch(
        URL,
        {"quiet_hours_start": "07:45:30", "business_hours": {"tue": ["06:00:00", "14:30"]}},
        format="json",
    )

    assert response.status_code == 200, response.content
    acme_manager.company.refresh_from_db()
    assert acme_manager.company.quiet_hours_start == datetime.time(7, 45, 30)
    assert response.json()["business_hours"]["tue"] == ["06:00", "14:30"]


@pytest.mark.parametrize(
    "body",
    [
        {"quiet_hours_start": "8am"},
        {"quiet_hours_start": "08:00:00+02:00"},
        {"quiet_hours_end": "24:00"},
        {"business_hours": {"mon": ["18:00", "08:00"]}},
        {"business_hours": {"mon": ["08:00"]}},
        {"business_hours": {"someday": ["08:00", "18:00"]}},
    ],
)
def test_other_shapes_are_a_400_and_change_nothing(acme_manager, body):
    response = acme_manager.client().patch(URL, body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"
    acme_manager.company.refresh_from_db()
    assert acme_manager.company.quiet_hours_start == datetime.time(8, 0)


def test_another_tenants_manager_sees_only_their_own_times(acme_manager, globex_manager):
    acme_manager.client().patch(URL, {"quiet_hours_start": "10:00"}, format="json")

    assert globex_manager.client().get(URL).json()["quiet_hours_start"] == "08:00"


@pytest.mark.parametrize(
    ("value", "matches"),
    [("08:00", True), ("23:59:59", True), ("8:00", False), ("24:00", False), ("08:00Z", False)],
)
def test_the_documented_pattern(value, matches):
    import re

    assert bool(re.match(CLOCK_TIME_PATTERN, value)) is matches
