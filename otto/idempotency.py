"""``Idempotency-Key`` for every POST of the API.

The first request with a key claims it by inserting an ``IdempotencyKey`` row; the
unique constraint on (company, key) decides who wins, never a check-then-insert. The
winner runs and stores its response. Later requests with the same key get:

- the stored response again, when the method, path and body are the same;
- 422 when they differ (a key is for one request, not a session);
- 409 while the first one is still running. A claim older than ``ABANDONED_AFTER`` (past
  any request timeout: its worker was killed) is taken over, so a key is never stuck.

A 5xx or an unhandled error releases the key, so the client's retry runs again. Rows are
purged after ``IDEMPOTENCY_TTL_DAYS`` by the ``purge-idempotency-keys`` schedule.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http.request import RawPostDataException
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from otto.models import Company, IdempotencyKey, User

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# A claim this old is taken to have no live request. Nothing times a request out
# (docs/operations.md#the-web-process: the web server has no per-request timeout); what
# bounds one is its blocking calls' own limits (pool wait 10 s, the cache's Redis 2 s,
# providers' timeouts), far under this; PostgreSQL queries have none.
ABANDONED_AFTER = timedelta(minutes=2)


class KeyInProgress(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A request with this Idempotency-Key is still running; retry shortly."
    default_code = "idempotency_in_progress"


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was used for a different request."
    default_code = "idempotency_key_reused"


class _Replay(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, row: IdempotencyKey) -> None:
        self.row = row


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def claim_key(
    company: Company, *, key: str, user: User | None, method: str, path: str, request_hash: str
) -> IdempotencyKey:
    """Claim ``key`` for this request, or raise :class:`_Replay`, 409 or 422."""
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                company=company,
                key=key,
                user=user,
                method=method,
                path=path[:500],
                request_hash=request_hash,
            )
    except IntegrityError:
        pass
    existing = IdempotencyKey.objects.filter(company=company, key=key).first()
    if existing is None:  # released between our insert and this read: the client retries
        raise KeyInProgress()
    if existing.request_hash != request_hash:
        raise KeyReused()
    if existing.status == IdempotencyKey.Status.COMPLETED:
        raise _Replay(existing)
    now = timezone.now()
    taken_over = IdempotencyKey.objects.filter(
        pk=existing.pk,
        status=IdempotencyKey.Status.IN_PROGRESS,
        created_at__lt=now - ABANDONED_AFTER,
    ).update(created_at=now, user=user)
    if not taken_over:
        raise KeyInProgress()
    existing.refresh_from_db()
    return existing


def complete_key(row: IdempotencyKey, status_code: int, body: Any) -> None:
    stored = json.loads(json.dumps(body, cls=JSONEncoder)) if body is not None else None
    IdempotencyKey.objects.filter(pk=row.pk, status=IdempotencyKey.Status.IN_PROGRESS).update(
        status=IdempotencyKey.Status.COMPLETED,
        response_status=status_code,
        response_body=stored,
        completed_at=timezone.now(),
    )


def release_key(row: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=row.pk, status=IdempotencyKey.Status.IN_PROGRESS).delete()


def purge_expired_keys() -> int:
    """Delete keys older than ``IDEMPOTENCY_TTL_DAYS``; returns how many."""
    cutoff = timezone.now() - timedelta(days=settings.IDEMPOTENCY_TTL_DAYS)
    return IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()[0]


def _raw_body(request: Request) -> bytes:
    try:
        return request.body
    except RawPostDataException:
        # Something already parsed the stream; the parsed data stands in for the bytes.
        return json.dumps(request.data, cls=JSONEncoder, sort_keys=True).encode()


if TYPE_CHECKING:
    from rest_framework.views import APIView

    from otto.auth import TenantRequest

    # What the mixin is mixed into, so its super() calls are checked against DRF's view.
    _ViewBase = APIView
else:
    _ViewBase = object


class IdempotencyMixin(_ViewBase):
    """For API views: claims the key after auth, permissions and throttles have passed."""

    _idempotency_row: IdempotencyKey | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self._idempotency_row = None
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None:
            return
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise exceptions.ValidationError(
                {HEADER: [f"Send 1 to {MAX_KEY_LENGTH} printable characters."]}
            )
        self._idempotency_row = claim_key(
            # Authentication and permissions (super().initial) guarantee the company.
            cast("TenantRequest", request).company,
            key=key,
            user=request.user if request.user.is_authenticated else None,
            method=request.method,
            path=request.path,
            request_hash=fingerprint(request.method, request.path, _raw_body(request)),
        )

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Replay):
            response = Response(exc.row.response_body, status=exc.row.response_status)
            response[REPLAY_HEADER] = "true"
            return response
        try:
            return super().handle_exception(exc)
        except Exception:
            if self._idempotency_row is not None:
                release_key(self._idempotency_row)
                self._idempotency_row = None
            raise

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        row, self._idempotency_row = self._idempotency_row, None
        if row is not None:
            if response.status_code >= 500:
                release_key(row)
            else:
                complete_key(row, response.status_code, getattr(response, "data", None))
        return response
