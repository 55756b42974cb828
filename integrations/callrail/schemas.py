"""CallRail API v3 payloads, parsed leniently (providers.md §1.2–1.4).

CallRail's types drift: ids are ``CAL…`` strings from the API but legacy numbers in some
payloads, ``duration`` is an int from the API and a string in webhooks,
``recording_duration`` the other way round. Every field but the id is optional, and an
optional value that cannot be read becomes None rather than an error, so one odd field
never blocks a call from being ingested.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


def _id(value: Any) -> Any:
    # Numeric legacy ids become strings; anything else falls through to validation.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _seconds(value: Any) -> int | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _when(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    names = [item.get("name") if isinstance(item, dict) else item for item in value]
    return [str(name) for name in names if name not in (None, "")]


Text = Annotated[str | None, BeforeValidator(_text)]
Seconds = Annotated[int | None, BeforeValidator(_seconds)]
Flag = Annotated[bool | None, BeforeValidator(_flag)]
When = Annotated[datetime.datetime | None, BeforeValidator(_when)]


class Call(BaseModel):
    """One call: the default fields plus those asked for with ``fields=``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: Annotated[str, BeforeValidator(_id), Field(min_length=1)]
    answered: Flag = None
    voicemail: Flag = None
    direction: Text = None
    duration: Seconds = None
    start_time: When = None
    customer_name: Text = None
    customer_phone_number: Text = None
    customer_city: Text = None
    customer_state: Text = None
    customer_country: Text = None
    tracking_phone_number: Text = None
    business_phone_number: Text = None
    recording: Text = None  # the recording.json endpoint, not the audio
    recording_duration: Seconds = None
    recording_player: Text = None
    agent_email: Text = None
    # Requested with fields=.
    company_id: Annotated[str | None, BeforeValidator(_text)] = None
    tags: Annotated[list[str], BeforeValidator(_tags)] = []
    note: Text = None
    lead_status: Text = None
    source: Text = None
    source_name: Text = None
    campaign: Text = None
    call_type: Text = None

    @property
    def has_recording(self) -> bool:
        return self.recording is not None


class OffsetPage(BaseModel):
    """``page``/``per_page`` pagination."""

    model_config = ConfigDict(extra="ignore")

    page: int = 1
    total_pages: int = 1
    calls: list[dict[str, Any]]


class RelativePage(BaseModel):
    """``relative_pagination=true``: follow ``next_page`` verbatim while ``has_next_page``."""

    model_config = ConfigDict(extra="ignore")

    has_next_page: bool = False
    next_page: str | None = None
    calls: list[dict[str, Any]]


class CompaniesPage(BaseModel):
    """``GET /a/{account}/companies.json``: offset pagination, envelope key ``companies``."""

    model_config = ConfigDict(extra="ignore")

    page: int = 1
    total_pages: int = 1
    companies: list[dict[str, Any]]


class CallRailCompany(BaseModel):
    """One company of the account (``id`` is ``COM…``)."""

    model_config = ConfigDict(extra="ignore")

    id: Annotated[str, Field(min_length=1)]
    name: str = ""
    status: str | None = None


class RecordingLink(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: Annotated[str, Field(min_length=1)]


@dataclass(frozen=True)
class Recording:
    """What a recording download wrote. ``url`` is where it was finally served from: do not
    store it, since CallRail's links (and HIPAA accounts' S3 links) expire."""

    content_type: str
    size: int
    sha256: str
    url: str
