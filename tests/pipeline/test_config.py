"""PIPELINE_STAGE_DEADLINES parsing, and call tasks named after their call (Failed tasks)."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from calls import tasks
from otto.env import env_durations
from otto.queues import task_name

DEFAULTS = {"transcribing": 900, "analyzing": 600}


def test_deadlines_take_seconds_or_units_over_the_defaults(monkeypatch):
    monkeypatch.setenv("PIPELINE_STAGE_DEADLINES", "transcribing=20m")

    assert env_durations("PIPELINE_STAGE_DEADLINES", DEFAULTS, keys=list(DEFAULTS)) == {
        "transcribing": 1200,
        "analyzing": 600,
    }


@pytest.mark.parametrize("value", ["transcribing=soon", "transcribing=0", "typing=5m"])
def test_a_bad_deadline_is_refused(monkeypatch, value):
    monkeypatch.setenv("PIPELINE_STAGE_DEADLINES", value)

    with pytest.raises(ImproperlyConfigured, match="PIPELINE_STAGE_DEADLINES"):
        env_durations("PIPELINE_STAGE_DEADLINES", DEFAULTS, keys=list(DEFAULTS))


def test_every_in_progress_stage_has_a_deadline_longer_than_a_task_may_run(settings):
    from calls import stages

    for stage in stages.IN_PROGRESS:
        assert settings.PIPELINE_STAGE_DEADLINES[stage] > settings.Q_TASK_TIMEOUT, stage


def test_a_call_task_is_named_after_its_call():
    path = tasks.transcribe_call.task_path

    assert task_name(tasks.transcribe_call, path, (42,)) == f"call 42 · {path}"
    assert task_name(tasks.reconcile_callrail, "x", ()).startswith("x · ")


@pytest.mark.parametrize(
    ("company_choice", "default", "used"),
    [("", "deepgram", "deepgram"), ("", "shunya", "shunya"), ("deepgram", "shunya", "deepgram")],
)
def test_a_company_without_a_transcriber_uses_the_deployments(
    settings, company_choice, default, used
):
    from calls.transcription import transcriber_name
    from otto.models import Company

    settings.TRANSCRIBER = default

    assert transcriber_name(Company(name="Acme", transcriber=company_choice)) == used


def test_a_new_company_follows_the_deployment_default():
    from otto.models import Company

    assert Company(name="Acme").transcriber == ""
