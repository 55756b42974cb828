"""A call's audio, streamed from CallRail into storage.

A stored recording is replaced only once its successor is downloaded in full and saved:
a re-fetch that fails (CallRail 5xx, a timeout, a 404, a recording over the limit) leaves
the stored file and the call's recording fields as they were, so it stays playable. The
old file is deleted only after the transaction that points the call at the new one has
committed (:func:`replace_after_commit`).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from calls.models import Call
from integrations.callrail import schemas
from integrations.callrail.client import CallRailClient
from integrations.errors import ProviderError

logger = logging.getLogger(__name__)

# Shorter audio holds no conversation worth transcribing.
MIN_RECORDING_SECONDS = 3
# Recordings up to this size are buffered in memory, larger ones spill to a temporary file.
SPOOL_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class StoredRecording:
    name: str
    size: int
    sha256: str
    content_type: str

    def fields(self) -> dict[str, object]:
        return {
            "recording": self.name,
            "recording_size": self.size,
            "recording_sha256": self.sha256,
            "recording_content_type": self.content_type[:100],
            # Audio fetched again after the retention purge is there to play again.
            "recording_purged_at": None,
        }


def nothing_to_record(found: schemas.Call) -> str:
    """Why CallRail's answer leaves nothing to transcribe, or ``""``."""
    if found.has_recording:
        if (
            found.recording_duration is not None
            and found.recording_duration < MIN_RECORDING_SECONDS
        ):
            return f"the recording is too short to transcribe ({found.recording_duration} s)"
        return ""
    if found.voicemail:
        return "voicemail without audio"
    if found.answered is False:
        return "missed call: nothing was recorded"
    return "CallRail has no recording for this call"


def store_recording(call: Call, client: CallRailClient) -> StoredRecording | None:
    """Stream the call's audio into storage; None when CallRail answers 404.

    Never more than ``RECORDING_MAX_BYTES``, never all of it in memory: it is spooled to a
    temporary file first, so a refused or broken download writes nothing to storage. The
    first download lands at ``call.recording_path``. The call's stored recording is never
    overwritten: the same audio again keeps it; other audio is saved under a new name, and
    the caller points the call at it (then :func:`replace_after_commit`).
    """
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        try:
            fetched = client.download_recording_to(
                call.external_id, spool, max_bytes=settings.RECORDING_MAX_BYTES
            )
        except ProviderError as exc:
            if exc.status == 404:
                return None
            raise
        current = call.recording.name or ""
        if current and fetched.sha256 == call.recording_sha256 and default_storage.exists(current):
            return StoredRecording(current, fetched.size, fetched.sha256, fetched.content_type)
        path = call.recording_path
        if path != current and default_storage.exists(path):
            # Left by an attempt that died before the call pointed at it: nobody plays it.
            default_storage.delete(path)
        spool.seek(0)
        name = default_storage.save(path, File(spool, name=path))
    return StoredRecording(name, fetched.size, fetched.sha256, fetched.content_type)


def replace_after_commit(previous: str, stored: StoredRecording) -> None:
    """The call now points at ``stored``: delete the file it replaced once that commits."""
    if previous and previous != stored.name:
        transaction.on_commit(lambda: _delete(previous))


def discard(previous: str, stored: StoredRecording) -> None:
    """The call was not pointed at ``stored`` (its lease was lost): delete the new file."""
    if stored.name != previous:
        _delete(stored.name)


def _delete(name: str) -> None:
    try:
        default_storage.delete(name)
    except Exception:
        # An orphaned file costs storage, not correctness; the next re-fetch or the
        # retention purge removes it.
        logger.exception("could not delete the replaced recording %s", name)
