"""CallRail API v3 over httpx (CallRail has no official Python SDK).

Built per call from settings: ``CALLRAIL_BASE_URL`` (includes ``/v3``), an explicit
timeout (``PROVIDER_TIMEOUTS["callrail"]``) and ``Authorization: Token token="KEY"``. The
key and account are given explicitly (:meth:`CallRailClient.with_credentials`): a tenant's
client is built by :func:`otto.selectors.callrail_client`, never by mixing a tenant's
account with the deployment's key.

CallRail allows 1,000 requests an hour. A 429 is retried here a few times with short
sleeps (``Retry-After`` when given, else a doubling backoff); a wait longer than
``max_wait`` is not slept through: the ProviderError carries ``retry_after`` so the
caller's scheduler backs off instead of a worker sitting idle.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import time
from collections.abc import Iterator
from typing import IO, Any, Literal
from urllib.parse import urlsplit

import httpx
import pydantic
from django.conf import settings

from integrations.callrail.schemas import (
    Call,
    CallRailCompany,
    CompaniesPage,
    OffsetPage,
    Recording,
    RecordingLink,
    RelativePage,
)
from integrations.errors import ProviderError, track
from integrations.http import tls_context

logger = logging.getLogger(__name__)

PROVIDER = "callrail"
# The extra fields the product reads (the defaults always come back too).
CALL_FIELDS = (
    "company_id",
    "tags",
    "note",
    "lead_status",
    "source",
    "source_name",
    "campaign",
    "customer_name",
    "customer_city",
    "customer_state",
    "call_type",
)
MAX_PER_PAGE = 250
DEFAULT_AUDIO_TYPE = "audio/mpeg"

DateBound = datetime.date | datetime.datetime


class RecordingTooLarge(ProviderError):
    """The recording is larger than we accept (``RECORDING_MAX_BYTES``): asking again
    cannot help."""

    def __init__(self, size: int, max_bytes: int) -> None:
        super().__init__(
            PROVIDER,
            f"the recording is larger than RECORDING_MAX_BYTES ({size} > {max_bytes} bytes)",
            permanent=True,
        )


class CallRailClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        account_id: str | None,
        timeout: float,
        max_retries: int = 2,
        max_wait: float = 5.0,
    ) -> None:
        if not api_key:
            raise ProviderError(PROVIDER, "no CallRail API key is configured", permanent=True)
        if not account_id:
            raise ProviderError(PROVIDER, "no CallRail account id is configured", permanent=True)
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.account_id = account_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait

    @classmethod
    def from_settings(cls) -> CallRailClient:
        """The deployment's own key and account (``CALLRAIL_API_KEY``/``_ACCOUNT_ID``)."""
        return cls.with_credentials(
            api_key=settings.CALLRAIL_API_KEY, account_id=settings.CALLRAIL_ACCOUNT_ID
        )

    @classmethod
    def with_credentials(cls, *, api_key: str | None, account_id: str | None) -> CallRailClient:
        """Exactly this key and account; a missing one raises a permanent ProviderError."""
        return cls(
            base_url=settings.CALLRAIL_BASE_URL,
            api_key=api_key,
            account_id=account_id,
            timeout=float(settings.PROVIDER_TIMEOUTS["callrail"]),
        )

    # --- operations --------------------------------------------------------------------

    def iter_calls(
        self,
        start: DateBound,
        end: DateBound,
        *,
        company_id: str | None = None,
        fields: tuple[str, ...] = CALL_FIELDS,
        per_page: int = MAX_PER_PAGE,
        relative: bool = True,
        order: Literal["asc", "desc"] | None = None,
    ) -> Iterator[Call]:
        """Every call of the account from ``start`` to ``end`` (inclusive), page by page.

        Relative pagination (the default) follows ``next_page`` and stays consistent while
        new calls arrive; offset pagination walks ``page`` up to ``total_pages``. Aware
        datetimes are sent in UTC; naive ones and dates are in the account's time zone.
        ``order`` sorts by start time (CallRail's default is newest first).
        """
        params: dict[str, Any] = {
            "start_date": _date_param(start),
            "end_date": _date_param(end),
            "per_page": min(per_page, MAX_PER_PAGE),
            "fields": ",".join(fields),
        }
        if _is_aware(start) or _is_aware(end):
            params["time_zone"] = "UTC"
        if company_id:
            params["company_id"] = company_id
        if order:
            params |= {"sort": "start_time", "order": order}
        path = f"/a/{self.account_id}/calls.json"
        with self._http() as http:
            if relative:
                yield from self._relative_pages(http, path, params)
            else:
                yield from self._offset_pages(http, path, params)

    def list_companies(self, *, per_page: int = MAX_PER_PAGE) -> list[CallRailCompany]:
        """Every company of the account this key can see (``companies.json``, offset
        pagination): what a tenant may claim as its own."""
        path = f"/a/{self.account_id}/companies.json"
        found: list[CallRailCompany] = []
        page = 1
        with self._http() as http:
            while True:
                with track(PROVIDER, "list_companies"):
                    data = self._get(
                        http,
                        self.base_url + path,
                        {"page": page, "per_page": min(per_page, MAX_PER_PAGE)},
                    )
                    envelope = _parse(CompaniesPage, data, path)
                    companies = [_parse(CallRailCompany, item, path) for item in envelope.companies]
                found.extend(companies)
                if not companies or page >= envelope.total_pages:
                    return found
                page += 1

    def get_call(self, call_id: str, *, fields: tuple[str, ...] = CALL_FIELDS) -> Call:
        path = f"/a/{self.account_id}/calls/{call_id}.json"
        with track(PROVIDER, "get_call"), self._http() as http:
            data = self._get(http, self.base_url + path, {"fields": ",".join(fields)})
            return _parse(Call, data, path)

    def recording_url(self, call_id: str) -> str:
        """A fresh link to the call's audio. Links expire: ask again, do not store it."""
        path = f"/a/{self.account_id}/calls/{call_id}/recording.json"
        with track(PROVIDER, "recording_url"), self._http() as http:
            return _parse(RecordingLink, self._get(http, self.base_url + path), path).url

    def download_recording_to(
        self, call_id: str, destination: IO[bytes], *, max_bytes: int
    ) -> Recording:
        """Stream the call's audio (MP3 from CallRail) into ``destination``, following the
        link's redirects, hashing as it goes. Never holds the recording in memory and never
        writes more than ``max_bytes``: a longer one raises :class:`RecordingTooLarge`."""
        url = self.recording_url(call_id)
        digest, size = hashlib.sha256(), 0
        # The link carries its own access key and points at another host: never send it
        # our API key.
        with track(PROVIDER, "download_recording"):
            try:
                with (
                    httpx.Client(
                        timeout=self.timeout, follow_redirects=True, verify=tls_context()
                    ) as http,
                    http.stream("GET", url) as response,
                ):
                    _raise_for_status(response, "GET recording")
                    declared = response.headers.get("Content-Length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise RecordingTooLarge(int(declared), max_bytes)
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise RecordingTooLarge(size, max_bytes)
                        digest.update(chunk)
                        destination.write(chunk)
                    content_type = response.headers.get("Content-Type", DEFAULT_AUDIO_TYPE)
                    final_url = str(response.url)
            except httpx.HTTPError as exc:
                raise _transport_error("GET recording", exc) from exc
            if not size:
                raise ProviderError(PROVIDER, "the recording is empty", permanent=False)
        return Recording(
            content_type=content_type.split(";")[0].strip(),
            size=size,
            sha256=digest.hexdigest(),
            url=final_url,
        )

    # --- paging ------------------------------------------------------------------------

    def _offset_pages(
        self, http: httpx.Client, path: str, params: dict[str, Any]
    ) -> Iterator[Call]:
        page = 1
        while True:
            with track(PROVIDER, "list_calls"):
                data = self._get(http, self.base_url + path, params | {"page": page})
                envelope = _parse(OffsetPage, data, path)
                calls = [_parse(Call, item, path) for item in envelope.calls]
            yield from calls
            if not calls or page >= envelope.total_pages:
                return
            page += 1

    def _relative_pages(
        self, http: httpx.Client, path: str, params: dict[str, Any]
    ) -> Iterator[Call]:
        url: str | None = self.base_url + path
        query: dict[str, Any] | None = params | {"relative_pagination": "true"}
        seen: set[str] = set()
        while url:
            with track(PROVIDER, "list_calls"):
                data = self._get(http, url, query)
                envelope = _parse(RelativePage, data, path)
                calls = [_parse(Call, item, path) for item in envelope.calls]
            yield from calls
            if not envelope.has_next_page or not envelope.next_page:
                return
            url, query = self._check_next_page(envelope.next_page, seen), None

    def _check_next_page(self, next_page: str, seen: set[str]) -> str:
        # next_page is followed verbatim, with our API key: it must stay on CallRail's host,
        # and a page that points back at itself must not loop forever.
        ours, theirs = urlsplit(self.base_url), urlsplit(next_page)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            raise ProviderError(
                PROVIDER, f"next_page points at another host: {theirs.netloc}", permanent=True
            )
        if next_page in seen:
            raise ProviderError(PROVIDER, "next_page repeats a page already read", permanent=True)
        seen.add(next_page)
        return next_page

    # --- HTTP --------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        return httpx.Client(
            timeout=self.timeout,
            verify=tls_context(),
            headers={
                "Authorization": f'Token token="{self.api_key}"',
                "Accept": "application/json",
                "Request-From": "otto",
            },
        )

    def _get(self, http: httpx.Client, url: str, params: dict[str, Any] | None = None) -> Any:
        label = f"GET {urlsplit(url).path}"
        for attempt in range(self.max_retries + 1):
            try:
                response = http.get(url, params=params)
            except httpx.HTTPError as exc:
                raise _transport_error(label, exc) from exc
            if response.status_code == 429 and attempt < self.max_retries:
                wait = _retry_after(response)
                wait = 0.5 * 2**attempt if wait is None else wait
                if wait <= self.max_wait:
                    logger.info("CallRail rate limit on %s; retrying in %.1fs", label, wait)
                    time.sleep(wait)
                    continue
            _raise_for_status(response, label)
            try:
                return response.json()
            except ValueError as exc:
                # A truncated or garbled body: most likely in transit, so worth a retry.
                raise ProviderError(
                    PROVIDER,
                    f"malformed JSON from {label}: {exc}",
                    permanent=False,
                    status=response.status_code,
                ) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")


def _raise_for_status(response: httpx.Response, label: str) -> None:
    if response.status_code < 400:
        return
    response.read()  # a no-op unless streamed; the error text needs the body
    raise ProviderError.from_status(
        PROVIDER, response.status_code, f"{label}: {_error_text(response)}", _retry_after(response)
    )


def _transport_error(label: str, exc: httpx.HTTPError) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(PROVIDER, f"{label} timed out", permanent=False)
    return ProviderError(PROVIDER, f"{label} failed: {type(exc).__name__}: {exc}", permanent=False)


def _parse[M: pydantic.BaseModel](model: type[M], data: Any, path: str) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ProviderError(
            PROVIDER,
            f"unexpected {model.__name__} from {path}: {where}: {first['msg']}",
            permanent=True,
        ) from exc


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(data, dict) and isinstance(error := data.get("error"), str):
        return error
    return str(data)[:200]


def _is_aware(value: DateBound) -> bool:
    return isinstance(value, datetime.datetime) and value.tzinfo is not None


def _date_param(value: DateBound) -> str:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return value.isoformat()
