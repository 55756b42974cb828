"""What calls holds on a person, for :mod:`otto.erasure`: their calls (by contact or by
the number), with transcripts, stage history, recording accesses, Shunya jobs, and the
recordings in storage (deleted once the erasure commits)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from calls.models import Call, CallStageChange, RecordingAccess, ShunyaJob, Transcript
from otto.erasure import Erasure, Person, Rows, rows


def person_calls(person: Person) -> QuerySet[Call]:
    """The person's calls in their company: linked to the contact, or from their number."""
    condition = Q(customer_number=person.phone)
    if person.contact is not None:
        condition |= Q(contact=person.contact)
    return Call.objects.filter(company=person.company).filter(condition)


def erase(person: Person, erasure: Erasure) -> None:
    calls = person_calls(person)
    for call in calls.exclude(recording="").only("recording"):
        erasure.remove_file(call.recording.storage, call.recording.name or "")
    # Transcripts, stage changes, recording accesses and Shunya jobs cascade with the call.
    erasure.delete(calls)


def export(person: Person) -> dict[str, Rows]:
    calls = person_calls(person)
    return {
        # The recording is its storage key; the audio itself is not exported.
        "calls": rows(calls, exclude=("search_vector",)),
        "transcripts": rows(Transcript.objects.filter(call__in=calls)),
        "stage_changes": rows(CallStageChange.objects.filter(call__in=calls)),
        "recording_accesses": rows(RecordingAccess.objects.filter(call__in=calls)),
        "shunya_jobs": rows(ShunyaJob.objects.filter(call__in=calls)),
    }
