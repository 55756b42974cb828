"""Fixtures for the calls API and admin: local storage and calls (S3 on moto is in
tests/conftest.py)."""

from __future__ import annotations

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
