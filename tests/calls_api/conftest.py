"""Fixtures for the calls API and admin: storages (local and moto's S3 server), calls."""

from __future__ import annotations

import uuid

import boto3
import pytest
from django.core.files.base import ContentFile

from calls.models import Call
from tests.api.factories import CallFactory, ContactFactory

AUDIO = b"ID3\x04\x00fake mp3 bytes " + bytes(range(256)) * 8


@pytest.fixture
def local_media(settings, tmp_path):
    """The embedded default: recordings on the local filesystem, in a fresh MEDIA_ROOT."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session")
def moto_s3_url():
    """moto's S3 as a real HTTP server on a free port, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(settings, moto_s3_url):
    """``STORAGES["default"]`` on S3 (django-storages) against moto's server, with a fresh
    bucket; the options mirror otto/settings.py's S3 block.

    Assigning ``settings.STORAGES`` fires ``setting_changed``, whose Django receiver drops
    the cached storages and re-arms the ``default_storage`` LazyObject, so the FileField's
    storage (that same LazyObject) follows.
    """
    bucket = f"otto-test-{uuid.uuid4().hex[:12]}"
    credentials = {
        "endpoint_url": moto_s3_url,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    client = boto3.client("s3", **credentials)
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "region_name": "us-east-1",
                "endpoint_url": moto_s3_url,
                "access_key": "testing",
                "secret_key": "testing",
                "default_acl": None,
                "file_overwrite": False,
                "querystring_expire": settings.RECORDING_URL_TTL_SECONDS,
                "signature_version": "s3v4",
            },
        },
    }
    client.bucket = bucket
    return client


def store_recording(call: Call, audio: bytes = AUDIO) -> Call:
    """Put audio in the current default storage the way ingest does, at the call's path."""
    call.recording.save(call.recording_path, ContentFile(audio), save=False)
    call.recording_size = len(audio)
    call.recording_content_type = "audio/mpeg"
    call.recording_duration_seconds = 93
    call.save()
    return call


@pytest.fixture
def make_call():
    def make(company, **fields) -> Call:
        fields.setdefault("contact", ContactFactory(company=company))
        return CallFactory(company=company, **fields)

    return make
