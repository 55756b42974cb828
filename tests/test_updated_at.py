"""``updated_at`` advances on every write, however it is written.

Most writes are compare-and-set ``QuerySet.update()`` calls, which ``auto_now`` never sees;
every model with an ``updated_at`` has :class:`otto.models.TimestampedQuerySet` as its
manager, so a client that syncs on ``updated_at`` sees each change.
"""

from __future__ import annotations

import datetime

import pytest
from django.apps import apps
from django.utils import timezone

from calls import stages
from calls.models import Call, CallBackfill, ShunyaJob, Transcript
from calls.retries import correct_roles
from calls.shunya import fail_job
from integrations.models import ClerkObjectVersion
from otto.models import Company, Contact, Membership, TimestampedQuerySet
from tests.api.factories import CallFactory, ContactFactory
from tests.integrations.fixtures import CLERK_SECRET, load, post_clerk, run_pushed_tasks

pytestmark = pytest.mark.django_db

LONG_AGO = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)


def age(row) -> None:
    """Set the row's ``updated_at`` far in the past (an explicit value is kept as given)."""
    type(row).objects.filter(pk=row.pk).update(updated_at=LONG_AGO)
    row.refresh_from_db()
    assert row.updated_at == LONG_AGO


def updated_at(row) -> datetime.datetime:
    return type(row).objects.values_list("updated_at", flat=True).get(pk=row.pk)


@pytest.fixture
def call(acme) -> Call:
    return CallFactory(company=acme, contact=ContactFactory(company=acme))


def test_every_model_with_updated_at_writes_through_the_timestamped_queryset():
    with_updated_at = [
        model
        for model in apps.get_models()
        if any(field.name == "updated_at" for field in model._meta.get_fields())
    ]

    assert with_updated_at  # the check below must have something to check
    for model in with_updated_at:
        assert isinstance(model._default_manager.all(), TimestampedQuerySet), model
        # and it changes no schema: migrations never serialise it
        assert not model._default_manager.use_in_migrations, model


def test_a_stage_move_advances_the_calls_updated_at(call):
    age(call)

    rows = Call.objects.filter(stage=call.stage)
    assert stages.move(rows, call, Call.Stage.FAILED, reason="ops gave up")

    assert updated_at(call) > LONG_AGO


def test_an_update_through_a_related_manager_advances_it(acme, call):
    age(call)

    acme.calls.filter(pk=call.pk).update(note="called back")

    assert updated_at(call) > LONG_AGO


def test_a_transcript_write_advances_its_updated_at(call):
    transcript = Transcript.objects.create(
        company=call.company,
        call=call,
        provider="deepgram",
        roles={"0": "agent", "1": "customer"},
        utterances=[{"speaker": 0, "role": "agent", "text": "Hello"}],
    )
    age(transcript)
    Transcript.objects.filter(pk=transcript.pk).update(language="en")
    assert updated_at(transcript) > LONG_AGO

    age(transcript)
    correct_roles(call, actor=None, swap=True)
    assert updated_at(transcript) > LONG_AGO


def test_a_shunya_job_update_advances_its_updated_at(call):
    Call.objects.filter(pk=call.pk).update(stage=Call.Stage.TRANSCRIBING)
    call.refresh_from_db()
    job = ShunyaJob.objects.create(
        company=call.company, call=call, job_type=ShunyaJob.JobType.TRANSCRIPTION, external_id="j1"
    )
    age(job)
    age(call)

    assert fail_job(job, "Shunya job j1 failed: timeout") == ShunyaJob.Status.FAILED

    assert updated_at(job) > LONG_AGO
    assert updated_at(call) > LONG_AGO


def test_a_company_and_a_contact_update_advance_their_updated_at(acme):
    contact = ContactFactory(company=acme)
    age(acme)
    age(contact)

    Company.objects.filter(pk=acme.pk).update(name="Acme Heating & Air")
    Contact.objects.filter(pk=contact.pk).update(name="Pat Caller")

    assert updated_at(acme) > LONG_AGO
    assert updated_at(contact) > LONG_AGO


def test_a_membership_revoked_by_clerk_advances_its_updated_at(
    db, client, settings, django_capture_on_commit_callbacks
):
    settings.CLERK_WEBHOOK_SECRET = CLERK_SECRET

    def deliver(fixture: str) -> None:
        with django_capture_on_commit_callbacks() as callbacks:
            assert post_clerk(client, load("clerk", fixture)).status_code == 200
        while callbacks:
            with django_capture_on_commit_callbacks() as more:
                run_pushed_tasks(callbacks)
            callbacks = more

    for fixture in ("organization.created", "user.created", "organizationMembership.created"):
        deliver(fixture)
    membership = Membership.objects.get()
    age(membership)

    # user.deleted revokes with a bare QuerySet.update(revoked_at=...)
    deliver("user.deleted")

    membership.refresh_from_db()
    assert membership.revoked_at is not None
    assert membership.updated_at > LONG_AGO


def test_an_explicit_updated_at_is_kept():
    ClerkObjectVersion.objects.create(clerk_id="org_1", version=1)
    chosen = timezone.now() - datetime.timedelta(days=3)

    ClerkObjectVersion.objects.filter(pk="org_1").update(version=2, updated_at=chosen)

    assert ClerkObjectVersion.objects.get(pk="org_1").updated_at == chosen


def test_an_empty_update_writes_nothing(acme):
    age(acme)

    assert Company.objects.filter(pk=acme.pk).update() == 0

    assert updated_at(acme) == LONG_AGO


def test_bulk_update_advances_updated_at_unless_given(acme):
    first, second = (
        CallBackfill.objects.create(
            company=acme,
            callrail_company_id=f"COM{n}",
            since=datetime.date(2026, 1, 1),
            until=datetime.date(2026, 1, 31),
        )
        for n in (1, 2)
    )
    for row in (first, second):
        age(row)
        row.cursor = timezone.now()

    CallBackfill.objects.bulk_update([first, second], ["cursor"])

    assert updated_at(first) > LONG_AGO
    assert updated_at(second) > LONG_AGO

    # a caller that lists updated_at itself keeps its own values
    first.updated_at = LONG_AGO
    CallBackfill.objects.bulk_update([first], ["cursor", "updated_at"])
    assert updated_at(first) == LONG_AGO


def test_the_calls_api_serves_the_advanced_updated_at(acme_csr, globex_manager, call):
    age(call)
    before = acme_csr.client().get(f"/api/v1/calls/{call.pk}/").json()["updated_at"]

    stages.move(Call.objects.filter(stage=call.stage), call, Call.Stage.FAILED, reason="x")

    after = acme_csr.client().get(f"/api/v1/calls/{call.pk}/").json()["updated_at"]
    assert datetime.datetime.fromisoformat(after) > datetime.datetime.fromisoformat(before)
    # and the outsider still gets nothing
    assert globex_manager.client().get(f"/api/v1/calls/{call.pk}/").status_code == 404
