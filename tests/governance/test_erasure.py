"""erase_contact and export_contact: a person removed everywhere in their company (rows,
webhook bodies, recordings in storage) leaving only an audit event with the number's hash
and an opt-out under its pseudonym; another tenant's same number untouched; the export
holds the person's rows and nothing of another tenant."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from appointments import pipeline as outcomes_pipeline
from appointments.models import Appointment, Lead, Task
from calls.models import Call, Transcript
from integrations.models import WebhookEvent
from messaging import gate, selectors
from messaging import services as messaging
from messaging.models import AiCall, ConsentEvent, FollowUp, Message, MissedCallRecovery, Thread
from otto import erasure
from otto.models import AuditAction, AuditEvent, Contact, IdempotencyKey
from tests.api.factories import CallFactory
from tests.appointments.conftest import analysed_call

PHONE = "+16175550142"  # the sandbox's booked caller
DIGITS = "6175550142"
FORMS = (DIGITS, "(617) 555-0142", "617-555-0142", "617.555.0142", "617 555 0142")


def seed(company, admin_user) -> Contact:
    """The booked caller of ``company`` with everything Otto can hold on them."""
    call = analysed_call(company, "booked")  # recording in storage, transcript, analysis
    outcomes_pipeline.apply_call(call.pk)  # lead, appointment, tasks, key signals
    contact = call.contact
    assert contact.phone == PHONE
    Task.objects.create(
        company=company, type=Task.Type.CALL_BACK, contact=contact, description=f"Ring {PHONE}"
    )
    missed = CallFactory(
        company=company, contact=contact, customer_number=PHONE, answered=False, stage="skipped"
    )
    MissedCallRecovery.objects.create(
        company=company,
        call=missed,
        contact=contact,
        started_at=missed.started_at,
        cooldown_until=missed.started_at + timezone.timedelta(hours=24),
    )
    FollowUp.objects.create(
        company=company,
        call=missed,
        contact=contact,
        phone=PHONE,
        channel=FollowUp.Channel.SMS,
        body="Still keen on the visit? Call us back on 617-555-0142's line.",
        drafted_by=FollowUp.DraftedBy.TEMPLATE,
    )
    opt_in = messaging.opt_in_ai_voice(
        company, phone=PHONE, actor=None, disclosure_version="v1", evidence="verbal"
    )
    AiCall.objects.create(  # an AI follow-up call, placed on that consent
        company=company,
        contact=contact,
        phone=PHONE,
        call=missed,
        consent=opt_in,
        bland_call_id=f"bland-{company.pk}",
        status=AiCall.Status.COMPLETED,
        transcript="user: you can reach me on 617-555-0142 after five",
        completed_at=timezone.now(),
    )
    twilio_number = "+13035550999"
    messaging.receive_message(
        company,
        sid=f"SM{company.pk:032d}",
        from_number=PHONE,
        to_number=twilio_number,
        body="Please call me at 617-555-0142. STOP",
        media=[],
    )
    messaging.receive_message(
        company,
        sid=f"SM9{company.pk:031d}",
        from_number=PHONE,
        to_number=twilio_number,
        body="STOP",
        media=[],
    )
    for key, body in (
        ("callrail", json.dumps({"customer_phone_number": PHONE, "customer_name": "Dana"})),
        ("twilio", f"From=%2B1{DIGITS}&Body=STOP&To=%2B13035550999"),
        ("bland", json.dumps({"summary": "Customer at (617) 555-0142 wants a quote"})),
    ):
        WebhookEvent.objects.create(
            provider=key,
            company=company,
            dedupe_key=f"{key}-{company.pk}",
            body=body,
            headers={"x-forwarded-for": "203.0.113.1"},
            status=WebhookEvent.Status.PROCESSED,
        )
    WebhookEvent.objects.create(
        provider="callrail", company=company, dedupe_key=f"unrelated-{company.pk}", body="{}"
    )
    IdempotencyKey.objects.create(
        company=company,
        key=f"idem-{company.pk}",
        method="POST",
        path="/api/v1/contacts/",
        request_hash="0" * 64,
        status=IdempotencyKey.Status.COMPLETED,
        response_status=201,
        response_body={"id": contact.pk, "phone": PHONE},
    )
    LogEntry.objects.create(
        user=admin_user,
        content_type=ContentType.objects.get_for_model(Contact),
        object_id=str(contact.pk),
        object_repr=PHONE,
        action_flag=CHANGE,
        change_message=f"Changed phone to {PHONE}.",
    )
    return contact


def scan() -> dict[str, int]:
    """Rows holding the number in any form, per table and column: every column of every
    table of the schema, cast to text."""
    patterns = [f"%{form}%" for form in FORMS]
    found = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, column_name"
        )
        columns = cursor.fetchall()
        for table, column in columns:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE ANY(%s)',  # noqa: S608 - names from the catalog
                [patterns],
            )
            count = cursor.fetchone()[0]
            if count:
                found[f"{table}.{column}"] = count
    return found


def stored_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


@pytest.fixture
def people(acme, globex, admin_user, sandbox, settings, django_capture_on_commit_callbacks):
    """Globex's and Acme's booked caller, the same number; the scan of Globex's alone."""
    with django_capture_on_commit_callbacks(execute=False):
        theirs = seed(globex, admin_user)
        baseline = scan()
        files = stored_files(Path(settings.MEDIA_ROOT))
        ours = seed(acme, admin_user)
    return ours, theirs, baseline, files


def test_erasure_leaves_no_trace_of_the_number_and_spares_the_other_tenant(
    acme, globex, people, settings, django_capture_on_commit_callbacks
):
    ours, theirs, baseline, globex_files = people
    root = Path(settings.MEDIA_ROOT)
    recordings = list(
        Call.objects.filter(company=acme).exclude(recording="").values_list("recording", flat=True)
    )
    assert recordings and all((root / name).exists() for name in recordings)
    assert scan() != baseline  # Acme holds the number now, in many places
    ledger = ConsentEvent.objects.filter(company=acme).count()
    assert ledger >= 2  # the AI-call opt-in, then STOP

    with django_capture_on_commit_callbacks(execute=True):
        result = erasure.erase_contact(acme, "(617) 555-0142")

    # every row, webhook body and cached response with the number is Globex's
    assert scan() == baseline
    # every stored file left is one Globex had; Acme's recordings are gone
    assert stored_files(root) == globex_files
    assert not any((root / name).exists() for name in recordings)
    for content in stored_files(root).values():
        assert not any(form.encode() in content for form in FORMS)
    # what was removed, per kind
    counts = result.counts
    assert counts["otto.Contact"] == 1 and counts["calls.Call"] == 2
    assert counts["calls.Transcript"] == 1 and counts["analysis.CallAnalysis"] >= 1
    assert counts["appointments.Lead"] == 1 and counts["appointments.Appointment"] == 1
    assert counts["appointments.Task"] >= 1 and counts["messaging.Message"] >= 2
    assert counts["messaging.Thread"] == 1 and counts["messaging.MissedCallRecovery"] == 1
    assert counts["messaging.FollowUp"] == 1 and counts["messaging.AiCall"] == 1
    assert counts["messaging.ConsentEvent"] == ledger
    assert counts["integrations.WebhookEvent (body erased)"] == 3
    assert counts["otto.IdempotencyKey"] == 1 and counts["admin.LogEntry"] == 1
    assert counts["storage files"] == len(recordings)
    assert result.failed_files == []
    # nothing of Acme's person is left; the unrelated delivery kept its body
    assert not Contact.objects.filter(company=acme).exists()
    assert not Call.objects.filter(company=acme).exists()
    assert not Transcript.objects.filter(company=acme).exists()
    assert not Lead.objects.filter(company=acme).exists()
    assert not Appointment.objects.filter(company=acme).exists()
    assert not Thread.objects.filter(company=acme).exists()
    assert not Message.objects.filter(company=acme).exists()
    assert WebhookEvent.objects.get(dedupe_key=f"unrelated-{acme.pk}").body == "{}"
    # Globex's person is whole
    assert Contact.objects.filter(pk=theirs.pk, phone=PHONE).exists()
    assert Call.objects.filter(company=globex).count() == 2
    assert Message.objects.filter(company=globex).count() >= 2
    # the one trace: an audit event with the hash and the counts, never the number
    erased = AuditEvent.objects.get(action=AuditAction.CONTACT_ERASED)
    assert erased.company == acme and erased.target_type == "phone"
    assert erased.target_id == erasure.phone_hash(PHONE) == erased.details["phone_hash"]
    assert erased.details["counts"]["calls.Call"] == 2
    assert not any(form in json.dumps(erased.details) for form in FORMS)


def test_an_opt_out_is_still_honoured_after_erasure(
    acme, people, django_capture_on_commit_callbacks
):
    assert selectors.is_opted_out(acme, PHONE)
    assert selectors.ai_voice_consented(acme, PHONE) is False  # STOP covers AI calls

    with django_capture_on_commit_callbacks(execute=True):
        erasure.erase_contact(acme, PHONE)

    kept = ConsentEvent.objects.get(company=acme)
    assert kept.phone == erasure.pseudonym(PHONE) and kept.action == "opt_out"
    assert kept.channel == "sms" and kept.message is None
    assert selectors.is_opted_out(acme, PHONE)
    decision = gate.check_send(acme, to=PHONE, kind=Message.Kind.MANUAL, now=timezone.now())
    assert not decision.allowed and decision.reason == gate.OPTED_OUT
    assert not selectors.ai_voice_consented(acme, PHONE)  # the old opt-in is gone
    # the person may still opt back in: START is newer than the kept opt-out
    messaging.receive_message(
        acme, sid="SMstart", from_number=PHONE, to_number="+13035550999", body="START", media=[]
    )
    assert not selectors.is_opted_out(acme, PHONE)


def test_a_number_never_opted_out_keeps_no_consent_row(
    acme, admin_user, sandbox, django_capture_on_commit_callbacks
):
    contact = Contact.objects.create(company=acme, phone="+16175550143", name="Lee")
    CallFactory(company=acme, contact=contact, customer_number=contact.phone)

    with django_capture_on_commit_callbacks(execute=True):
        result = erasure.erase_contact(acme, contact.phone)

    assert not ConsentEvent.objects.exists()
    assert result.counts["calls.Call"] == 1 and result.counts["otto.Contact"] == 1


def test_a_failing_part_erases_nothing(
    acme, people, settings, monkeypatch, django_capture_on_commit_callbacks
):
    before = scan()
    files = stored_files(Path(settings.MEDIA_ROOT))

    def broken(person, result):
        raise RuntimeError("a bug in one app's erase")

    # Registered first, so it runs last: every other part has erased its rows by then.
    failing = erasure.Part("boom", broken, lambda person: {})
    monkeypatch.setattr(erasure, "_parts", {"boom": failing, **erasure._parts})

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        erasure.erase_contact(acme, PHONE)

    assert scan() == before
    assert stored_files(Path(settings.MEDIA_ROOT)) == files
    assert not AuditEvent.objects.filter(action=AuditAction.CONTACT_ERASED).exists()


def test_a_storage_failure_is_reported_after_the_rows_are_gone(
    acme, people, monkeypatch, django_capture_on_commit_callbacks
):
    from django.core.files.storage import FileSystemStorage

    def refuse(self, name):
        raise OSError("disk says no")

    monkeypatch.setattr(FileSystemStorage, "delete", refuse)

    with django_capture_on_commit_callbacks(execute=True):
        result = erasure.erase_contact(acme, PHONE)

    assert result.failed_files and all("recordings" in key for key in result.failed_files)
    assert not Call.objects.filter(company=acme).exists()


def test_erasing_on_s3_deletes_the_objects(acme, s3, django_capture_on_commit_callbacks):
    from tests.calls_api.conftest import store_recording

    contact = Contact.objects.create(company=acme, phone=PHONE)
    call = store_recording(CallFactory(company=acme, contact=contact, customer_number=PHONE))
    key = call.recording.name
    assert s3.list_objects_v2(Bucket=s3.bucket)["KeyCount"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        result = erasure.erase_contact(acme, PHONE)

    assert s3.list_objects_v2(Bucket=s3.bucket)["KeyCount"] == 0
    assert result.counts["storage files"] == 1 and key.endswith(".mp3")


def test_an_invalid_number_is_refused_and_nothing_is_recorded(acme):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        erasure.erase_contact(acme, "not a number")
    assert not AuditEvent.objects.exists()


# --- export --------------------------------------------------------------------------------


def company_ids(value) -> set[int]:
    """Every ``company_id`` anywhere in an exported document."""
    if isinstance(value, dict):
        found = {value["company_id"]} if "company_id" in value else set()
        for item in value.values():
            found |= company_ids(item)
        return found
    if isinstance(value, list):
        return set().union(*(company_ids(item) for item in value)) if value else set()
    return set()


def test_the_export_holds_the_person_and_nothing_of_another_tenant(acme, globex, people):
    ours, theirs, *_ = people

    data = erasure.export_contact(acme, PHONE)

    assert data["company"] == "acme" and data["phone"] == PHONE
    assert [row["id"] for row in data["core"]["contacts"]] == [ours.pk]
    assert {row["id"] for row in data["calls"]["calls"]} == set(
        Call.objects.filter(company=acme).values_list("pk", flat=True)
    )
    recordings = [row["recording"] for row in data["calls"]["calls"] if row["recording"]]
    assert recordings and all(name.endswith(".mp3") for name in recordings)  # keys, no bytes
    assert len(data["calls"]["transcripts"]) == 1 and data["analysis"]["analyses"]
    assert len(data["appointments"]["leads"]) == 1 and data["appointments"]["appointments"]
    assert len(data["messaging"]["messages"]) >= 2 and data["messaging"]["consent_events"]
    assert len(data["messaging"]["followups"]) == 1 and len(data["messaging"]["ai_calls"]) == 1
    assert len(data["core"]["webhook_events"]) == 3
    assert company_ids(data) == {acme.pk}
    assert "search_vector" not in data["calls"]["calls"][0]
    exported = AuditEvent.objects.get(action=AuditAction.CONTACT_EXPORTED)
    assert exported.company == acme and exported.target_id == erasure.phone_hash(PHONE)
    assert exported.details["counts"]["calls.calls"] == 2
    # the export changed nothing
    assert Contact.objects.filter(pk=ours.pk).exists()


# --- the commands and the admin actions ----------------------------------------------------


def test_the_commands_export_then_erase(acme, people, tmp_path, capsys):
    output = tmp_path / "export.json"

    call_command("export_contact", "--company", "acme", "--phone", PHONE, "--output", output)
    exported = json.loads(output.read_text())
    assert exported["core"]["contacts"][0]["phone"] == PHONE

    call_command("erase_contact", "--company", "acme", "--phone", PHONE, "--no-input")
    printed = capsys.readouterr().out
    assert "erased +1 •••-•••-0142 from acme" in printed
    assert "calls.Call: 2" in printed
    assert PHONE not in printed
    assert not Contact.objects.filter(company=acme).exists()


def test_the_erase_command_asks_first(acme, people, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: "no")

    with pytest.raises(CommandError, match="Not erased"):
        call_command("erase_contact", "--company", "acme", "--phone", PHONE)

    assert Contact.objects.filter(company=acme).exists()


def test_the_commands_refuse_an_unknown_company_or_a_bad_number(acme):
    with pytest.raises(CommandError, match="No company"):
        call_command("erase_contact", "--company", "nope", "--phone", PHONE, "--no-input")
    with pytest.raises(CommandError, match="not a phone number"):
        call_command("export_contact", "--company", "acme", "--phone", "banana")


def test_staff_find_an_erasure_in_the_admin_by_the_number(
    admin_client, acme, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        erasure.erase_contact(acme, PHONE)

    found = admin_client.get("/admin/otto/auditevent/", {"q": "(617) 555-0142"})
    missed = admin_client.get("/admin/otto/auditevent/", {"q": "+16175550143"})

    hashed = f"phone {erasure.phone_hash(PHONE)}"
    assert hashed in found.content.decode()
    assert hashed not in missed.content.decode()


def test_the_admin_exports_selected_contacts(admin_client, admin_user, acme, people):
    ours, *_ = people

    response = admin_client.post(
        "/admin/otto/contact/", {"action": "export_contacts", "_selected_action": [ours.pk]}
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    [document] = json.loads(response.content)
    assert document["core"]["contacts"][0]["id"] == ours.pk
    assert AuditEvent.objects.get(action=AuditAction.CONTACT_EXPORTED).actor == admin_user


def test_the_admin_erases_only_after_confirmation(
    admin_client, admin_user, acme, globex, people, django_capture_on_commit_callbacks
):
    ours, theirs, *_ = people
    form = {"action": "erase_contacts", "_selected_action": [ours.pk]}

    asked = admin_client.post("/admin/otto/contact/", form)

    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Erase contacts everywhere?" in page and 'name="confirm"' in page
    assert PHONE not in page  # the number is shown masked
    assert Contact.objects.filter(pk=ours.pk).exists()

    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post("/admin/otto/contact/", {**form, "confirm": "yes"}, follow=True)

    assert done.status_code == 200 and "Erased" in done.content.decode()
    assert not Contact.objects.filter(pk=ours.pk).exists()
    assert Contact.objects.filter(pk=theirs.pk).exists()
    assert AuditEvent.objects.get(action=AuditAction.CONTACT_ERASED).actor == admin_user


def test_staff_without_delete_permission_cannot_erase(client, acme, django_user_model):
    from django.contrib.auth.models import Permission

    contact = Contact.objects.create(company=acme, phone=PHONE)
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_contact"),
        Permission.objects.get(codename="change_contact"),
    )
    client.login(username="viewer", password="pw")

    client.post(
        "/admin/otto/contact/",
        {"action": "erase_contacts", "_selected_action": [contact.pk], "confirm": "yes"},
    )

    assert Contact.objects.filter(pk=contact.pk).exists()
    assert not AuditEvent.objects.exists()


def test_media_root_is_the_tests_tmp(settings):
    # The scans above read MEDIA_ROOT: make sure it is the test's own directory.
    assert "pytest" in os.fspath(settings.MEDIA_ROOT)
