"""Recording links: short-lived URLs to a call's audio, and the audit of who asked for one
(a :class:`~calls.models.RecordingAccess` on the call and a ``recording.played`` event in
the tenant's audit log, written together).

On S3 the link is a presigned GET that expires by itself. Any other storage (the local
filesystem on the embedded default) gets a link to :func:`calls.views.recording_file`
carrying a signed, timestamped token: the token is the credential, like a presigned URL's
query string, and it expires after ``RECORDING_URL_TTL_SECONDS`` the same way. MEDIA_ROOT is
never served as such.
"""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from calls.models import Call, RecordingAccess
from otto import audit
from otto.models import AuditAction, User

_SALT = "calls.recording"


class NoRecording(Exception):
    """The call has no recording in storage (missed, no audio, or not fetched yet)."""


class BadLink(Exception):
    """A recording token that is expired, tampered with or not one of ours."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def redirect_to_recording(call: Call, request: HttpRequest) -> HttpResponseRedirect:
    """Record the access and redirect (uncacheable) to a short-lived URL to ``call``'s
    recording; :class:`NoRecording` when it has none.

    The caller has already decided that the user may see ``call`` (the tenant viewset, or
    the staff-only admin).
    """
    if not call.recording:
        raise NoRecording(f"Call {call.pk} has no recording.")
    # Both callers (the tenant viewset, the staff admin) serve signed-in users only.
    user = cast(User, request.user)
    with transaction.atomic():
        # The call's own history of plays (its admin page), and the tenant's audit log.
        RecordingAccess.objects.create(
            company_id=call.company_id,
            call=call,
            user=user,
            ip_address=audit.client_ip(request),
        )
        audit.record(
            AuditAction.RECORDING_PLAYED,
            company=call.company,
            actor=user,
            request=request,
            target_type="call",
            target_id=call.pk,
        )
    response = HttpResponseRedirect(recording_url(call))
    add_never_cache_headers(response)
    return response


def missing_reason(call: Call) -> str:
    """Why ``call`` has no recording to play, as the API and the admin say it."""
    if call.recording_purged_at is not None:
        return (
            "This call's recording was deleted on "
            f"{call.recording_purged_at:%Y-%m-%d} under the company's retention policy."
        )
    return "This call has no recording."


def recording_url(call: Call) -> str:
    storage = call.recording.storage
    ttl = settings.RECORDING_URL_TTL_SECONDS
    if getattr(storage, "querystring_auth", False):
        # django-storages' S3: a presigned GET, valid for ttl seconds.
        # S3Storage.url takes ``expire``; the stubs know only the base Storage.url.
        return storage.url(call.recording.name, expire=ttl)  # type: ignore[call-arg]
    # Only the call id is signed: the token reveals no storage path.
    token = signing.dumps(call.pk, salt=_SALT)
    return reverse("recording-file", args=[token])


def check_token(token: str) -> Call:
    """The call whose recording a local link points at, or :class:`BadLink`.

    The tenant was checked when the link was made; the token itself is the credential.
    """
    try:
        call_id = signing.loads(token, salt=_SALT, max_age=settings.RECORDING_URL_TTL_SECONDS)
    except signing.SignatureExpired:
        raise BadLink("link_expired", "This recording link has expired.") from None
    except signing.BadSignature:
        raise BadLink("link_invalid", "This recording link is not valid.") from None
    call = Call.objects.only("recording", "recording_content_type").filter(pk=call_id).first()
    if call is None or not call.recording:
        raise NoRecording(f"Call {call_id} has no recording.")
    return call
