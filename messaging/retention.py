"""What the message window removes (otto.retention, docs/retention.md): the bodies and
media links of texts older than the window, and the thread previews that quote them. The
transcript window removes an AI call's transcript and summary (the call's record stays:
when, to whom, on which consent, its outcome).

Rows stay: a blanked message still says who texted whom, when, and how its delivery went,
and the thread keeps its history and counts. The consent ledger stays whole, and so does
the body of any message a consent event points at (the STOP or the free-text revocation
is the evidence of that event). A message still to be sent keeps its body.
"""

from __future__ import annotations

from django.db.models import QuerySet

from messaging.models import AiCall, Message, Thread
from otto.retention import Purge

UNSENT = (Message.Status.SCHEDULED, Message.Status.QUEUED, Message.Status.SENDING)


def messages_past_window(purge: Purge) -> QuerySet[Message]:
    """The tenant's texts older than its window whose body or media are still there."""
    return (
        Message.objects.filter(company=purge.company, created_at__lt=purge.cutoff)
        .exclude(status__in=UNSENT)
        .exclude(body="", media=[])
        .exclude(consent_events__isnull=False)
    )


def purge_messages(purge: Purge) -> int:
    return purge.blank(messages_past_window(purge), body="", media=[])


def purge_previews(purge: Purge) -> int:
    """A thread whose last text is older than the window no longer quotes it."""
    rows = Thread.objects.filter(company=purge.company, last_message_at__lt=purge.cutoff).exclude(
        last_message_preview=""
    )
    return purge.blank(rows, last_message_preview="")


def purge_ai_call_transcripts(purge: Purge) -> int:
    """An AI call that ended before the transcript window: its words go, like a call's."""
    rows = AiCall.objects.filter(company=purge.company, completed_at__lt=purge.cutoff).exclude(
        transcript="", summary=""
    )
    return purge.blank(rows, transcript="", summary="")
