"""`manage.py preflight`: the deployment checklist passes on a production-like setup and
names the item that breaks, with a hint, when one setting is wrong."""

from __future__ import annotations

import json
import time
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule

from otto.brokers import presence_key
from otto.models import QueueHeartbeat
from otto.queues import DEFAULT_CLUSTER, Queue

# What .ci/run sets for its production deploy checks, plus what a real deployment adds:
# the metrics token, S3 (moto here), Sentry and the keys of the default providers.
PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": "9fQ2-vX7kLr0pZ4sT8wYb1nM6cH3jD5gA0eU7iO2qR9tK4lW",
    "ALLOWED_ORIGINS": ["https://app.example.com"],
    "PUBLIC_BASE_URL": "https://otto.example.com",
    "USING_SQLITE": False,
    "SANDBOX": False,
    "METRICS_TOKEN": "m3tr1cs-Zq8vN2kLx7RpW4yT",
    "SENTRY_DSN": "https://0a1b2c3d@o1.ingest.sentry.io/1",
    "DEEPGRAM_API_KEY": "dg-4f8a2b9c1d7e",
    "OPENAI_API_KEYS": ["sk-proj-7Hq2Lm9xR4"],
    "TRANSCRIBER": "deepgram",
    "ANALYZER": "openai",
    "CLERK_ISSUER": "",
    "TWILIO_ACCOUNT_SID": "",
    "UWC_BASE_URL": "",
    "BLAND_API_KEY": "",
    "CALLRAIL_API_KEY": None,
    "CALLRAIL_SINGLE_TENANT": "",
}


@pytest.fixture
def live_cluster():
    """The default cluster's presence key and a fresh heartbeat for every queue, as a
    running qcluster leaves them."""
    cache.set(
        presence_key(DEFAULT_CLUSTER),
        {"since": time.time() - 600, "seen": time.time(), "host": "w1", "pid": 1},
        60,
    )
    for queue in Queue:
        QueueHeartbeat.objects.update_or_create(
            queue=queue,
            defaults={
                "cluster": DEFAULT_CLUSTER,
                "beat_at": timezone.now(),
                "host": "w1",
                "pid": 1,
            },
        )
    yield
    cache.delete(presence_key(DEFAULT_CLUSTER))


@pytest.fixture
def production(db, settings, s3, live_cluster):
    for name, value in PRODUCTION.items():
        setattr(settings, name, value)
    settings.S3_BUCKET = s3.bucket
    return settings


def preflight(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("preflight", *args, stdout=out)
    except CommandError as error:
        assert error.returncode == 1
        return 1, out.getvalue()
    return 0, out.getvalue()


def failed(*args: str) -> dict[str, dict]:
    code, out = preflight("--json", *args)
    document = json.loads(out)
    assert code == (0 if document["ok"] else 1)
    return {item["name"]: item for item in document["items"] if not item["ok"]}


def test_a_production_like_deployment_passes_and_prints_the_webhook_urls(production):
    code, out = preflight()
    assert code == 0, out
    assert "✗" not in out
    assert "✓ indexes:" in out
    assert "✓ storage: s3://" in out
    assert "https://otto.example.com/callrail/call.completed" in out
    assert "https://otto.example.com/sms/twilio-webhook" in out


def test_the_storage_probe_leaves_nothing_in_the_bucket(production, s3):
    assert failed() == {}
    assert s3.list_objects_v2(Bucket=s3.bucket).get("KeyCount", 0) == 0


def test_json_lists_every_item_with_a_hint_for_each_failure(production):
    production.SENTRY_DSN = None
    code, out = preflight("--json")
    document = json.loads(out)
    assert code == 1
    assert document["environment"] == "production"
    assert document["ok"] is False
    sentry = next(item for item in document["items"] if item["name"] == "sentry")
    assert sentry["ok"] is False and "SENTRY_DSN" in sentry["hint"]
    assert document["webhook_urls"]["Clerk"] == "https://otto.example.com/webhooks/clerk"


def _drop_index(settings):
    with connection.cursor() as cursor:  # rolled back with the test's transaction
        cursor.execute("DROP INDEX calls_company_started_idx")


def _stale_schedule(settings):
    Schedule.objects.filter(name="prune-task-results").update(minutes=5)


def _no_cluster(settings):
    cache.delete(presence_key(DEFAULT_CLUSTER))


def _stale_heartbeat(settings):
    QueueHeartbeat.objects.filter(queue=Queue.ASR).update(
        beat_at=timezone.now() - timezone.timedelta(hours=1)
    )


def _two_schedulers(settings):
    settings.QUEUE_ROUTES = {**settings.QUEUE_ROUTES, Queue.ASR: "asr"}
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "ALT_CLUSTERS": {"asr": {"scheduler": True}}}


def _unreachable_s3(settings):
    options = settings.STORAGES["default"]["OPTIONS"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": {**options, "bucket_name": "nope"}},
    }


@pytest.mark.parametrize(
    ("change", "item"),
    [
        ({"USING_SQLITE": True}, "env vars"),
        ({"REDIS_URL": ""}, "env vars"),
        ({"PUBLIC_BASE_URL": "http://otto.example.com"}, "env vars"),
        ({"METRICS_TOKEN": None}, "env vars"),
        ({"S3_BUCKET": ""}, "env vars"),
        ({"SANDBOX": True}, "env vars"),
        ({"SECRET_KEY": "insecure-development-key-do-not-deploy-0123456789"}, "secrets"),
        ({"SECRET_KEY": "short"}, "secrets"),
        ({"METRICS_TOKEN": "change-me"}, "secrets"),
        ({"ALLOWED_ORIGINS": ["*"]}, "ALLOWED_ORIGINS"),
        ({"ALLOWED_ORIGINS": ["http://app.example.com"]}, "ALLOWED_ORIGINS"),
        (_drop_index, "indexes"),
        ({"REDIS_URL": ""}, "broker"),
        (
            {"CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}},
            "cache",
        ),
        (_stale_schedule, "schedules"),
        (_no_cluster, "scheduler"),
        (_two_schedulers, "scheduler"),
        (_no_cluster, "queues"),
        (_stale_heartbeat, "queues"),
        (_unreachable_s3, "storage"),
        ({"S3_BUCKET": ""}, "storage"),
        ({"SENTRY_DSN": None}, "sentry"),
        ({"DEEPGRAM_API_KEY": None}, "provider deepgram"),
        ({"OPENAI_API_KEYS": []}, "provider openai"),
        (
            {"TRANSCRIBER": "shunya", "UWC_API_KEY": "k-9Zx2", "UWC_HMAC_SECRET": None},
            "provider shunya",
        ),
        (
            {"CLERK_ISSUER": "https://clerk.example.com", "CLERK_WEBHOOK_SECRET": None},
            "provider clerk",
        ),
        ({"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": ""}, "provider twilio"),
        ({"BLAND_API_KEY": "b-123", "BLAND_WEBHOOK_SECRET": "placeholder"}, "provider bland"),
        ({"CALLRAIL_API_KEY": "cr-9f2", "CALLRAIL_ACCOUNT_ID": ""}, "provider callrail"),
    ],
)
def test_a_broken_setting_fails_its_item_with_a_hint(production, change, item):
    if callable(change):
        change(production)
    else:
        for name, value in change.items():
            setattr(production, name, value)
    failures = failed()
    assert item in failures, failures
    assert failures[item]["hint"]


def test_development_needs_no_production_service(db, settings, live_cluster):
    settings.ENVIRONMENT = "development"
    failures = failed()
    for item in ("env vars", "secrets", "ALLOWED_ORIGINS", "sentry"):
        assert item not in failures
