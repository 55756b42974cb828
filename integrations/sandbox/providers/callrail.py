"""Sandbox CallRail (API v3): calls, recordings, recording bytes and post-call webhooks.

- ``GET /v3/a/{account_id}/calls.json``: offset pagination (``page``/``per_page``) or
  relative pagination (``relative_pagination=true``/``offset``, ``next_page`` on this host);
  ``start_date``/``end_date`` (date or ``YYYY-MM-DDTHH:MM``, in ``time_zone``),
  ``date_range``, ``company_id``, ``direction``, ``answer_status``, ``order``, ``fields=``.
- ``GET /v3/a/{account_id}/calls/{id}.json`` by ``CAL…`` or legacy numeric id.
- ``GET /v3/a/{account_id}/calls/{id}/recording.json`` → ``{"url": …/redirect?access_key}``,
  which answers 302 to ``/media/recordings/{scenario}.wav`` (the scenario's generated WAV).
- ``GET /v3/a/{account_id}/companies.json``: the account's companies (offset pagination,
  envelope ``companies``), each ``id`` ``COM…``, ``name``, ``status``, ``time_zone``,
  ``created_at``. An account's companies are the ones its calls were made for, those
  registered through the control route below, and, for the sandbox's own account,
  ``COM0000sandbox`` and the demo tenant's ``COM0000demo``.
- Auth: ``Authorization: Token token="KEY"`` (quoted or not); 401 otherwise. The
  sandbox's own key reads every account; a key given to a control route reads only the
  accounts it was given for (403 for another), as a real CallRail user's key would.
- Control: ``POST /_sandbox/callrail/calls`` creates calls from the scripted scenarios and
  delivers each one's post-call webhook, signed with the given signing key, to
  ``webhook_url``. Calls are simulated; nobody phoned anyone. Options for the unhappy
  paths and for history: ``missed`` (no answer, no recording), ``recording: "404"`` (the
  call names a recording CallRail no longer has), ``days`` (spread the calls over the past
  days, for backfills) and ``call_id``/``legacy_id`` (a call with given ids).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, date, datetime, time, timedelta
from itertools import cycle
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.callrail.signature import sign_callrail
from integrations.sandbox import scenarios
from integrations.sandbox.audio import CONTENT_TYPE
from integrations.sandbox.config import CREDENTIALS
from integrations.sandbox.server import Request, Response, Sandbox, route

ACCOUNT = r"/v3/a/(?P<account_id>[^/]+)"
TIME_ZONE = ZoneInfo("America/New_York")
MAX_PER_PAGE = 250
MAX_CALLS_PER_REQUEST = 200
_TOKEN = re.compile(r'^Token\s+token="?(?P<key>[^"]+)"?$')

DEFAULT_FIELDS = (
    "answered business_phone_number customer_city customer_country customer_name"
    " customer_phone_number customer_state direction duration id recording recording_duration"
    " recording_player start_time tracking_phone_number voicemail agent_email"
).split()
EXTRA_FIELDS = frozenset(
    "company_id company_name company_time_zone tags note lead_status value source source_name"
    " campaign medium keywords landing_page_url referrer_domain referring_url first_call"
    " prior_calls total_calls call_type created_at tracker_id person_id timeline_url"
    " utm_source utm_medium utm_campaign utm_term utm_content gclid fbclid transcription"
    " call_summary sentiment lead_score zip_code".split()
)


def _calls(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    # The state holds whatever each provider keeps; this one keeps rows by id.
    calls: dict[str, dict[str, Any]] = sandbox.state["callrail"].setdefault("calls", {})
    return calls


def _key_accounts(sandbox: Sandbox) -> dict[str, set[str]]:
    """API key → the accounts it may read (keys given to the control routes)."""
    key_accounts: dict[str, set[str]] = sandbox.state["callrail"].setdefault("key_accounts", {})
    return key_accounts


def _grant(sandbox: Sandbox, api_key: str, account: str) -> None:
    sandbox.state["callrail"].setdefault("keys", set()).add(api_key)
    _key_accounts(sandbox).setdefault(api_key, set()).add(account)


def _guarded(request: Request) -> Response | None:
    match = _TOKEN.match(request.headers.get("authorization", "").strip())
    key = match["key"] if match else None
    if key == CREDENTIALS["CALLRAIL_API_KEY"]:
        return None
    accounts = _key_accounts(request.sandbox).get(key or "")
    if accounts is None:
        return Response.error(401, "HTTP Token: Access denied.")
    if request.params.get("account_id") not in accounts:
        return Response.error(403, "You do not have access to this account.")
    return None


SANDBOX_COMPANIES = {
    CREDENTIALS["CALLRAIL_ACCOUNT_ID"]: {
        "COM0000sandbox": "Sandbox company",
        "COM0000demo": "Acme HVAC (demo)",
    }
}


def _companies(sandbox: Sandbox, account: str) -> dict[str, str]:
    """The account's companies, ``COM…`` id → name."""
    registered = sandbox.state["callrail"].setdefault("companies", {})
    found: dict[str, str] = dict(SANDBOX_COMPANIES.get(account, {})) | registered.get(account, {})
    for call in _calls(sandbox).values():
        if call["_account_id"] == account:
            found.setdefault(call["company_id"], call["company_name"])
    return found


def _legacy_id(value: str) -> int:
    """A stable 9-digit number standing in for CallRail's legacy numeric ids."""
    return 100_000_000 + int(hashlib.sha256(value.encode()).hexdigest()[:8], 16) % 900_000_000


def _public(call: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    wanted = [*DEFAULT_FIELDS, *sorted(fields)]
    return {name: call.get(name) for name in wanted}


def _fields(request: Request) -> set[str] | Response:
    fields = {f.strip() for f in (request.arg("fields") or "").split(",") if f.strip()}
    unknown = fields - EXTRA_FIELDS - set(DEFAULT_FIELDS)
    if unknown:
        return Response.error(400, f"Invalid field(s): {', '.join(sorted(unknown))}")
    return fields


def _find(request: Request) -> dict[str, Any] | None:
    call_id, account = request.params["call_id"], request.params["account_id"]
    for call in _calls(request.sandbox).values():
        if call["_account_id"] == account and call_id in (call["id"], str(call["_legacy_id"])):
            return call
    return None


# --- dates -----------------------------------------------------------------------------


def _bound(value: str, zone: ZoneInfo, *, end: bool) -> datetime:
    """An inclusive bound: a date-only ``end_date`` means up to 23:59:59 that day."""
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime.combine(day, time.max if end else time.min, zone)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def _window(request: Request) -> tuple[datetime | None, datetime | None] | Response:
    try:
        zone = ZoneInfo(request.arg("time_zone") or "America/New_York")
    except (ZoneInfoNotFoundError, ValueError):
        return Response.error(400, "Invalid time_zone")
    start, end = request.arg("start_date"), request.arg("end_date")
    try:
        if start or end:
            return (
                _bound(start, zone, end=False) if start else None,
                _bound(end, zone, end=True) if end else None,
            )
    except ValueError:
        return Response.error(400, "Invalid start_date or end_date")
    today = datetime.now(zone).date()
    days = {"today": 0, "recent": 6, "last_7_days": 6, "last_30_days": 29, "all_time": None}
    date_range = request.arg("date_range") or "recent"
    if date_range == "yesterday":
        day = today - timedelta(days=1)
        return datetime.combine(day, time.min, zone), datetime.combine(day, time.max, zone)
    if date_range not in days:
        return Response.error(400, f"Unsupported date_range in the sandbox: {date_range}")
    back = days[date_range]
    if back is None:
        return None, None
    return datetime.combine(today - timedelta(days=back), time.min, zone), None


# --- API -------------------------------------------------------------------------------


@route("GET", ACCOUNT + r"/calls\.json", "callrail.calls.list")
def list_calls(request: Request) -> Response:
    if denied := _guarded(request):
        return denied
    fields, window = _fields(request), _window(request)
    for problem in (fields, window):
        if isinstance(problem, Response):
            return problem
    assert isinstance(fields, set) and isinstance(window, tuple)  # noqa: S101 - narrowed above
    start, end = window
    filters = {
        "company_id": request.arg("company_id"),
        "direction": request.arg("direction"),
    }
    answer_status = request.arg("answer_status")
    with request.sandbox.lock:
        calls = [
            c
            for c in _calls(request.sandbox).values()
            if c["_account_id"] == request.params["account_id"]
            and all(value is None or c.get(name) == value for name, value in filters.items())
            and (answer_status is None or c["_answer_status"] == answer_status)
            and (start is None or c["_started"] >= start)
            and (end is None or c["_started"] <= end)
        ]
    calls.sort(key=lambda c: c["_started"], reverse=request.arg("order", "desc") != "asc")
    try:
        per_page = min(MAX_PER_PAGE, max(1, int(request.arg("per_page") or 100)))
        page = max(1, int(request.arg("page") or 1))
        offset = max(0, int(request.arg("offset") or 0))
    except ValueError:
        return Response.error(400, "per_page, page and offset must be integers")

    if request.arg("relative_pagination") == "true":
        chunk = calls[offset : offset + per_page]
        more = offset + per_page < len(calls)
        query = {k: v[0] for k, v in request.query.items()} | {"offset": offset + per_page}
        next_page = f"{request.base_url}{request.path}?{urlencode(query)}" if more else None
        return Response.json(
            {
                "calls": [_public(c, fields) for c in chunk],
                "has_next_page": more,
                "next_page": next_page,
            }
        )
    total_pages = max(1, -(-len(calls) // per_page))
    chunk = calls[(page - 1) * per_page : page * per_page]
    return Response.json(
        {
            "page": page,
            "per_page": per_page,
            "total_pages": total_pages,
            "total_records": len(calls),
            "calls": [_public(c, fields) for c in chunk],
        }
    )


@route("GET", ACCOUNT + r"/companies\.json", "callrail.companies.list")
def list_companies(request: Request) -> Response:
    if denied := _guarded(request):
        return denied
    try:
        per_page = min(MAX_PER_PAGE, max(1, int(request.arg("per_page") or 100)))
        page = max(1, int(request.arg("page") or 1))
    except ValueError:
        return Response.error(400, "per_page and page must be integers")
    with request.sandbox.lock:
        companies = sorted(_companies(request.sandbox, request.params["account_id"]).items())
    chunk = companies[(page - 1) * per_page : page * per_page]
    return Response.json(
        {
            "page": page,
            "per_page": per_page,
            "total_pages": max(1, -(-len(companies) // per_page)),
            "total_records": len(companies),
            "companies": [
                {
                    "id": company_id,
                    "name": name,
                    "status": "active",
                    "time_zone": str(TIME_ZONE),
                    "created_at": "2024-01-01T00:00:00.000-05:00",
                }
                for company_id, name in chunk
            ],
        }
    )


@route("POST", r"/_sandbox/callrail/companies", "_sandbox.callrail.companies")
def create_company(request: Request) -> Response:
    """Register a company in an account. Body: ``account_id``, ``company_id`` (``COM…``),
    ``name``, and ``api_key`` (that key may read the account from now on)."""
    try:
        spec = request.json()
        account, company_id = str(spec["account_id"]), str(spec["company_id"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return Response.error(400, f"bad request: {exc!r}")
    with request.sandbox.lock:
        registered = request.sandbox.state["callrail"].setdefault("companies", {})
        registered.setdefault(account, {})[company_id] = str(spec.get("name") or company_id)
        if spec.get("api_key"):
            _grant(request.sandbox, str(spec["api_key"]), account)
    return Response.json({"id": company_id, "account_id": account}, 201)


@route("GET", ACCOUNT + r"/calls/(?P<call_id>[^/]+)\.json", "callrail.calls.get")
def get_call(request: Request) -> Response:
    if denied := _guarded(request):
        return denied
    fields = _fields(request)
    if isinstance(fields, Response):
        return fields
    call = _find(request)
    if call is None:
        return Response.error(404, "Not found")
    return Response.json(_public(call, fields))


@route("GET", ACCOUNT + r"/calls/(?P<call_id>[^/]+)/recording\.json", "callrail.recording")
def get_recording(request: Request) -> Response:
    if denied := _guarded(request):
        return denied
    call = _find(request)
    if call is None or not call["_redirect_url"]:
        return Response.error(404, "Not found")
    return Response.json({"url": call["_redirect_url"]})


@route(
    "GET",
    r"/media/callrail/(?P<call_id>[^/]+)/(?P<key>[a-z0-9_]+)/redirect",
    "callrail.media.redirect",
)
def redirect_recording(request: Request) -> Response:
    # Like app.callrail.com's link: no API key, an access key in the query, then a 302.
    if not request.arg("access_key"):
        return Response.error(403, "Forbidden")
    if request.params["key"] not in scenarios.SCENARIOS:
        return Response.error(404, "Not found")
    location = scenarios.recording_url(scenarios.SCENARIOS[request.params["key"]], request.base_url)
    return Response(302, b"", {"Location": location})


@route("GET", r"/media/recordings/(?P<key>[a-z0-9_]+)\.wav", "callrail.media.file")
def recording_file(request: Request) -> Response:
    scenario = scenarios.SCENARIOS.get(request.params["key"])
    if scenario is None:
        return Response.error(404, "Not found")
    return Response(200, scenarios.audio_for(scenario), {"Content-Type": CONTENT_TYPE})


# --- control: create calls and deliver post-call webhooks ------------------------------


def _make_call(
    sandbox: Sandbox, spec: dict[str, Any], scenario: scenarios.Scenario, started: datetime
) -> dict[str, Any]:
    account, company = str(spec["account_id"]), str(spec.get("company_id") or "COM0000sandbox")
    call_id = str(spec.get("call_id") or "CAL" + secrets.token_hex(16))
    legacy = int(spec.get("legacy_id") or _legacy_id(call_id))
    base = f"{sandbox.url}/v3/a/{account}/calls/{call_id}"
    missed = bool(spec.get("missed"))
    answered = scenario.answered and not missed
    has_audio = bool(scenario.utterances) and not missed
    redirect: str | None = (
        f"{sandbox.url}/media/callrail/{call_id}/{scenario.key}/redirect"
        f"?access_key={secrets.token_hex(10)}"
    )
    if spec.get("recording") == "404":
        redirect = None  # the call still names its recording; recording.json answers 404
    answer_status = "answered" if answered else "voicemail" if scenario.voicemail else "missed"
    return {
        "id": call_id,
        "answered": answered,
        "business_phone_number": None,
        "customer_city": scenario.customer_city,
        "customer_country": "US",
        "customer_name": scenario.customer_name,
        # A caller of one's own (e.g. many distinct callers), else the scenario's.
        "customer_phone_number": spec.get("customer_phone_number") or scenario.customer_phone,
        "customer_state": spec.get("customer_state", scenario.customer_state),
        "direction": spec.get("direction") or scenario.direction,
        "duration": 9 if missed else round(scenario.duration),
        "recording": f"{base}/recording.json" if has_audio else None,
        "recording_duration": str(round(scenario.duration)) if has_audio else None,
        # CallRail's is an HTML player page; the sandbox links the playable file itself.
        "recording_player": scenarios.recording_url(scenario, sandbox.url) if has_audio else None,
        "start_time": started.isoformat(timespec="milliseconds"),
        "tracking_phone_number": spec.get("tracking_number") or "+15555550100",
        "voicemail": scenario.voicemail and not missed,
        "agent_email": "csr@sandbox.example.com" if answered else None,
        "company_id": company,
        "company_name": spec.get("company_name") or "Sandbox company",
        "company_time_zone": str(TIME_ZONE),
        "tags": [],
        "note": f"{scenarios.SIMULATED_NOTE} Scenario: {scenario.key}.",
        "lead_status": None,
        "value": None,
        "source": scenario.source,
        "source_name": scenario.source,
        "call_type": answer_status if not answered else "inbound",
        "created_at": started.isoformat(timespec="milliseconds"),
        "tracker_id": "TRK" + hashlib.sha256(company.encode()).hexdigest()[:32],
        "first_call": True,
        "_account_id": account,
        "_legacy_id": legacy,
        "_company_legacy_id": _legacy_id(company),
        "_started": started,
        "_answer_status": answer_status,
        "_redirect_url": redirect if has_audio else None,
        "_scenario": scenario.key,
    }


def post_call_body(call: dict[str, Any]) -> bytes:
    """The post-call webhook: the call object with legacy ids and types (providers.md §1.5).

    Legacy numeric ``id``/``company_id`` next to the ``resource_id``/``company_resource_id``
    strings, ``duration`` as a string, ``recording_duration`` as an int, plus the legacy
    ``callername``/``callernum``/``trackingnum``/``datetime``/``timestamp`` keys.
    """
    public = {k: v for k, v in call.items() if not k.startswith("_")}
    started: datetime = call["_started"]
    recording_seconds = call["recording_duration"]
    body = public | {
        "id": call["_legacy_id"],
        "resource_id": call["id"],
        "company_id": call["_company_legacy_id"],
        "company_resource_id": call["company_id"],
        "duration": str(call["duration"]),
        "recording": call["_redirect_url"],
        "recording_duration": int(recording_seconds) if recording_seconds else None,
        "callername": call["customer_name"],
        "callernum": call["customer_phone_number"],
        "trackingnum": call["tracking_phone_number"],
        "datetime": started.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "timestamp": call["start_time"],
        "simulated": True,
    }
    return json.dumps(body, separators=(",", ":")).encode()


@route("POST", r"/_sandbox/callrail/calls", "_sandbox.callrail.calls")
def create_calls(request: Request) -> Response:
    """Create ``count`` calls (cycling through the scenarios unless one is named).

    Body: ``account_id`` (required), ``company_id``, ``tracking_number``, ``api_key`` (also
    accepted by the API from now on, for this account), ``signing_key`` and ``webhook_url``
    (both needed to deliver webhooks; without them the calls are only created), ``count``,
    ``scenario``,
    ``missed``, ``recording`` (``"404"``), ``direction``, ``days``, ``call_id`` and
    ``legacy_id`` (count 1), ``customer_phone_number`` and ``customer_state`` (the caller's,
    in place of the scenario's).
    Deliveries happen before the answer, so the answer carries the app's status for each.
    """
    try:
        spec = request.json()
        count = int(spec.get("count", 1))
        account = str(spec["account_id"])
        days = float(spec.get("days") or 0)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return Response.error(400, f"bad request: {exc!r}")
    if not 1 <= count <= MAX_CALLS_PER_REQUEST:
        return Response.error(400, f"count must be between 1 and {MAX_CALLS_PER_REQUEST}")
    if count > 1 and (spec.get("call_id") or spec.get("legacy_id")):
        return Response.error(400, "call_id and legacy_id name one call: count must be 1")
    key = spec.get("scenario")
    if key and key not in scenarios.SCENARIOS:
        return Response.error(
            400, f"unknown scenario {key!r}; one of {sorted(scenarios.SCENARIOS)}"
        )
    picks = cycle([scenarios.SCENARIOS[key]] if key else scenarios.SCENARIOS.values())
    sandbox = request.sandbox
    now = datetime.now(TIME_ZONE)
    created = []
    with sandbox.lock:
        if spec.get("api_key"):
            _grant(sandbox, str(spec["api_key"]), account)
        for index in range(count):
            # Oldest first, a few minutes apart, ending just now: the calls of the last hour;
            # with ``days``, spread evenly over those past days, ending an hour ago.
            if days:
                started = now - timedelta(hours=1) - timedelta(days=days) * (count - index) / count
            else:
                started = now - timedelta(minutes=3 * (count - index), seconds=index * 7)
            call = _make_call(sandbox, spec | {"account_id": account}, next(picks), started)
            _calls(sandbox)[call["id"]] = call
            created.append(call)

    results = []
    for call in created:
        result = {
            "id": call["id"],
            "legacy_id": call["_legacy_id"],
            "scenario": call["_scenario"],
            "customer_name": call["customer_name"],
            "customer_phone_number": call["customer_phone_number"],
            "status": None,
        }
        if spec.get("webhook_url") and spec.get("signing_key"):
            body = post_call_body(call)
            headers = {
                "Content-Type": "application/json",
                "Signature": sign_callrail(body, str(spec["signing_key"])),
                "User-Agent": "CallRail-Webhooks (Otto sandbox)",
            }
            result["status"] = sandbox.deliver(str(spec["webhook_url"]), body, headers)
        results.append(result)
    return Response.json({"calls": results}, 201)
