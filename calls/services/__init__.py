"""Call ingest: from a CallRail webhook, reconciliation or backfill to a stored call.

One module per concern:

- :mod:`~calls.services.upsert`: the call a delivery names, race-safe, by ``CAL…`` or
  legacy numeric id (:func:`upsert_call`, :func:`upsert_from_webhook`);
- :mod:`~calls.services.ingest`: the ingest stage itself (``received → ingesting →
  recorded``), ops' re-run and re-fetch (:func:`ingest_call`, :func:`request_ingest`,
  :func:`refresh_call`, :func:`store_without_recording`);
- :mod:`~calls.services.details`: CallRail's view of a call written onto the row
  (:func:`apply_callrail_call`);
- :mod:`~calls.services.contacts`: the contact a caller's number belongs to;
- :mod:`~calls.services.recording`: the audio streamed into storage, replacing a stored
  recording only once the new one is in hand.

The stages ingest owns (``Call.Stage``, docs/operations.md "Call ingest"):

- ``received``: the row exists and waits for :func:`ingest_call`.
- ``ingesting``: a worker holds it (:func:`calls.stages.claim`, until its lease runs out).
- ``recorded``: the API's view of the call is applied and its audio is in storage; the call
  was handed to transcription through the one seam, :func:`calls.pipeline.start_transcription`.
- ``skipped`` (terminal): there is nothing to transcribe (missed call, no audio, a recording
  CallRail no longer has, too short); ``stage_reason`` says which.
- ``failed`` (terminal until ops retry it): ``last_error`` says why.

Other apps import the names below from ``calls.services``; the modules are this
package's own layout.
"""

from calls.services.details import apply_callrail_call
from calls.services.ingest import (
    ingest_call,
    refresh_call,
    request_ingest,
    store_without_recording,
)
from calls.services.recording import MIN_RECORDING_SECONDS, StoredRecording
from calls.services.upsert import upsert_call, upsert_from_webhook

__all__ = [
    "MIN_RECORDING_SECONDS",
    "StoredRecording",
    "apply_callrail_call",
    "ingest_call",
    "refresh_call",
    "request_ingest",
    "store_without_recording",
    "upsert_call",
    "upsert_from_webhook",
]
