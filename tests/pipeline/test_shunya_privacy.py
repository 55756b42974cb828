"""Shunya's job-complete webhook carries the unredacted transcript: nothing of it is ever
written. The inbox stores a redacted body with the original's hash; the transcript Otto
stores is the one it would store from the original; a replay verifies Otto's seal.

Runs the real path: a Shunya job on the sandbox, its signed webhook posted to the app.
"""

from __future__ import annotations

import hashlib
import io
import json
import re

import pytest
from django.apps import apps
from django.core.files.storage import default_storage
from django.db import connection

from calls.models import Transcript
from calls.redaction import redact_text, redact_utterances
from calls.webhooks import shunya as shunya_webhooks
from integrations import services
from integrations.models import WebhookEvent
from integrations.sandbox import scenarios
from integrations.sandbox.config import CREDENTIALS
from integrations.shunya.signature import sign_shunya
from tests.pipeline import test_shunya as shunya_tests
from tests.pipeline.conftest import post_shunya, recorded_call, shunya_delivery
from tests.pipeline.test_shunya import submit, transcribed_once

# The Shunya pipeline's fixtures, shared with its own tests.
outbox = shunya_tests.outbox
shunya_acme = shunya_tests.shunya_acme

CARD_DIGITS = "4111111111111111"
SECRET = str(CREDENTIALS["UWC_HMAC_SECRET"])


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _digits_only(value: str) -> str:
    return re.sub(r"[\s\-–.,]", "", value)


def tables_holding(needle: str) -> list[str]:
    """Every ``table.column`` of a text, JSON or binary type whose value, with separators
    removed, contains ``needle``: all of the database, not only Otto's models."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type IN "
            "('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY')"
        )
        columns = cursor.fetchall()
        for table, column, data_type in columns:
            value = f'"{column}"::text'
            if data_type == "bytea":
                value = f"encode(\"{column}\", 'escape')"
            cursor.execute(
                f'SELECT count(*) FROM "{table}" '  # noqa: S608 -- names from the catalogue
                f"WHERE regexp_replace({value}, '[[:space:],.–-]', '', 'g') LIKE %s",
                [f"%{needle}%"],
            )
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    return found


def files_holding(needle: str, directory: str = "") -> list[str]:
    """Every file in the default storage whose bytes, separators removed, hold ``needle``."""
    found = []
    try:
        folders, files = default_storage.listdir(directory)
    except FileNotFoundError:
        return found
    for name in files:
        path = f"{directory}/{name}" if directory else name
        with default_storage.open(path) as handle:
            data = handle.read()
        if needle.encode() in re.sub(rb"[\s\-.,]", b"", data):
            found.append(path)
    for folder in folders:
        found += files_holding(needle, f"{directory}/{folder}" if directory else folder)
    return found


def test_the_search_finds_a_card_number_where_one_is_stored(db, acme, media):
    # the check below cannot pass by looking in the wrong place
    body = "card 4111 1111 1111 1111"
    WebhookEvent.objects.create(
        provider="shunya", dedupe_key="probe", event_type="probe", headers={}, body=body
    )
    default_storage.save("probe/file.txt", io.BytesIO(b"card 4111-1111-1111-1111"))
    assert "integrations_webhookevent.body" in tables_holding(CARD_DIGITS)
    assert files_holding(CARD_DIGITS) == ["probe/file.txt"]


def test_a_card_read_out_on_a_shunya_call_is_stored_nowhere(
    shunya_acme, worker, outbox, client, media
):
    # given a call where the customer reads out a card number, transcribed by Shunya
    call = recorded_call(shunya_acme, "card_number")
    job = submit(worker, call)
    delivery = shunya_delivery(outbox, job)
    assert CARD_DIGITS in _digits_only(delivery.body.decode())  # Shunya sends it in clear

    # when its signed webhook arrives and is processed
    with worker.running():
        response = post_shunya(client, delivery.body, delivery.headers)
    assert response.status_code == 200, response.content

    # then the transcript is stored, redacted, with what was redacted
    transcript = transcribed_once(call, worker)
    assert "[CARD]" in transcript.text
    assert transcript.redaction_counts == {"card": 1}
    assert [span["kind"] for span in transcript.redaction_spans] == ["card"]
    # the stored event is redacted and remembers the original only by its hash
    event = WebhookEvent.objects.get(provider="shunya")
    assert event.status == "processed"
    assert "[CARD]" in event.body
    original = hashlib.sha256(delivery.body).hexdigest()
    assert event.headers[shunya_webhooks.ORIGINAL_SHA256_HEADER] == original
    # and the card number is in no table and no stored file
    assert tables_holding(CARD_DIGITS) == []
    assert files_holding(CARD_DIGITS) == []
    assert default_storage.exists(call.recording.name)  # the storage search saw the recording


def test_the_transcript_from_the_redacted_body_is_the_one_from_the_original(
    shunya_acme, worker, outbox, client, media
):
    call = recorded_call(shunya_acme, "card_number")
    job = submit(worker, call)
    delivery = shunya_delivery(outbox, job)
    original = json.loads(delivery.body)["job"]
    stored = json.loads(shunya_webhooks.redact_body(delivery.body))["job"]

    # redaction is idempotent: redacting the stored text again changes nothing
    for utterance in stored["result"]["utterances"]:
        assert redact_text(utterance["text"]).text == utterance["text"]
    assert redact_utterances(stored["result"]["utterances"]).utterances == (
        redact_utterances(original["result"]["utterances"]).utterances
    )

    with worker.running():
        assert post_shunya(client, delivery.body, delivery.headers).status_code == 200
    transcript = transcribed_once(call, worker)
    expected_text = "\n".join(
        u["text"] for u in redact_utterances(original["result"]["utterances"]).utterances
    )
    assert transcript.text == expected_text
    assert [u["text"] for u in transcript.utterances] == expected_text.split("\n")


def test_a_replay_of_a_redacted_event_verifies_otto_s_seal(
    shunya_acme, worker, outbox, client, media
):
    call = recorded_call(shunya_acme, "card_number")
    job = submit(worker, call)
    delivery = shunya_delivery(outbox, job)
    with worker.running():
        post_shunya(client, delivery.body, delivery.headers)
    event = WebhookEvent.objects.get(provider="shunya")

    # the provider's HMAC covers the original body, which is gone: the seal is checked
    with worker.running():
        assert services.replay_event(event) == "processed"
    assert Transcript.objects.filter(call=call).count() == 1

    # a stored body edited afterwards (say, the card put back) does not verify
    tampered = event.body.replace("[CARD]", "4111 1111 1111 1111")
    WebhookEvent.objects.filter(pk=event.pk).update(body=tampered)
    event.refresh_from_db()
    with pytest.raises(services.ReplayRefused, match="signature no longer verifies"):
        services.replay_event(event)


def test_a_body_with_nothing_to_redact_is_stored_as_signed(
    shunya_acme, worker, outbox, client, media
):
    call = recorded_call(shunya_acme, "booked")
    job = submit(worker, call)
    delivery = shunya_delivery(outbox, job)
    with worker.running():
        post_shunya(client, delivery.body, delivery.headers)

    event = WebhookEvent.objects.get(provider="shunya")
    assert event.body.encode() == delivery.body
    assert shunya_webhooks.SEAL_HEADER not in event.headers
    # its replay checks Shunya's own signature, as before
    WebhookEvent.objects.filter(pk=event.pk).update(body=event.body.replace("Acme", "Acne"))
    event.refresh_from_db()
    with pytest.raises(services.ReplayRefused):
        services.replay_event(event)


def test_a_signed_body_that_is_not_a_job_event_is_redacted_too(db, client, media, settings):
    settings.UWC_HMAC_SECRET = SECRET
    body = json.dumps({"event": "job.completed", "job": {"text": "card 4111 1111 1111 1111"}})
    response = post_shunya(client, body.encode(), sign_shunya(body.encode(), SECRET))

    assert response.status_code == 200
    event = WebhookEvent.objects.get(provider="shunya")
    assert event.status == "failed"
    assert CARD_DIGITS not in _digits_only(event.body + event.last_error)
    assert tables_holding(CARD_DIGITS) == []


def test_the_search_covers_every_model_table(db):
    # every concrete model's table is in the catalogue the search reads
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        tables = {row[0] for row in cursor.fetchall()}
    for model in apps.get_models():
        if model._meta.managed and not model._meta.proxy:
            assert model._meta.db_table in tables
    assert scenarios.SCENARIOS["card_number"]  # the scenario the tests rely on


def test_the_migration_redacts_bodies_stored_before_redaction_at_receipt(
    shunya_acme, worker, outbox, media
):
    from importlib import import_module

    from integrations.inbox import kept_headers

    # given a job-completed event stored verbatim, as releases before this one stored it
    call = recorded_call(shunya_acme, "card_number")
    delivery = shunya_delivery(outbox, submit(worker, call))
    event = WebhookEvent.objects.create(
        provider="shunya",
        company=shunya_acme,
        dedupe_key="stored-before-redaction",
        event_type="job.completed",
        headers=kept_headers(delivery.headers, shunya_webhooks.HEADERS),
        body=delivery.body.decode(),
        status="processed",
    )
    assert tables_holding(CARD_DIGITS) == ["integrations_webhookevent.body"]

    # when the data migration runs
    migration = import_module("calls.migrations.0007_redact_stored_shunya_bodies")
    migration.redact_stored_bodies(apps, None)

    # then the card number is gone, and a replay verifies the stored body as Otto's own
    event.refresh_from_db()
    assert "[CARD]" in event.body
    assert tables_holding(CARD_DIGITS) == []
    original = hashlib.sha256(delivery.body).hexdigest()
    assert event.headers[shunya_webhooks.ORIGINAL_SHA256_HEADER] == original
    shunya_webhooks.check_delivery(event.body.encode(), event.headers, "", replay=True)
    # and running it again changes nothing
    body = event.body
    migration.redact_stored_bodies(apps, None)
    event.refresh_from_db()
    assert event.body == body
