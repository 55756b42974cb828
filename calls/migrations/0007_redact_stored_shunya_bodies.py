"""Redact the Shunya webhook bodies stored before bodies were redacted at receipt.

Shunya's ``job.completed`` carries the unredacted transcript. From this release on the inbox
stores it redacted and sealed (calls.webhooks.shunya); this applies the same to the events
already stored, so no unredacted transcript stays in the database. It imports the live
redaction on purpose: the stored body must match what a replay of a new event checks.
"""

import hashlib

from django.db import migrations

BATCH = 500


def redact_stored_bodies(apps, schema_editor):
    from calls.webhooks import shunya

    WebhookEvent = apps.get_model("integrations", "WebhookEvent")
    events = WebhookEvent.objects.filter(provider="shunya").order_by("pk")
    for event in events.iterator(chunk_size=BATCH):
        if shunya.SEAL_HEADER in (event.headers or {}):
            continue  # stored redacted already
        original = event.body.encode()
        stored = shunya.redact_body(original)
        if stored == original:
            continue
        digest = hashlib.sha256(original).hexdigest()
        headers = {
            **(event.headers or {}),
            shunya.ORIGINAL_SHA256_HEADER: digest,
            shunya.SEAL_HEADER: shunya.seal(digest, stored),
        }
        WebhookEvent.objects.filter(pk=event.pk).update(body=stored.decode(), headers=headers)


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0006_ingesting_stage"),
        ("integrations", "0004_webhook_enqueue_state"),
    ]

    # Irreversible by design: the unredacted text is not kept anywhere to restore.
    operations = [migrations.RunPython(redact_stored_bodies, migrations.RunPython.noop)]
