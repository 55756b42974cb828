"""The CallRail post-call and call-modified webhook body, parsed leniently.

The body is "the call object" plus legacy fields (providers.md §1.5), and its types drift
between the webhook and the API: ids are numeric (legacy) or ``CAL…``/``COM…`` strings,
``duration`` is ``"13"`` or ``13``. Only the call id is required, because ingest re-fetches
the call from the API by it (the webhook is a trigger, not the source of truth); every
other field is optional and a malformed optional value reads as missing, not as an error.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from integrations.callrail.schemas import Flag, Seconds, Text, When


def _names(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return sorted(str(item) for item in value if item is not None)


class CallWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Text = None
    resource_id: Text = None
    company_id: Text = None
    company_resource_id: Text = None
    answered: Flag = None
    voicemail: Flag = None
    direction: Text = None
    call_type: Text = None
    duration: Seconds = None
    start_time: When = None
    customer_phone_number: Text = None
    tracking_phone_number: Text = None
    # Legacy aliases CallRail still sends next to the call object.
    trackingnum: Text = None
    changes: Annotated[list[str], BeforeValidator(_names)] = []

    @model_validator(mode="after")
    def _has_call_id(self) -> CallWebhook:
        if not self.call_id:
            raise ValueError(
                "the body has no call id (resource_id or id), so the call cannot be fetched"
            )
        return self

    @property
    def call_id(self) -> str | None:
        """The provider call id: the ``CAL…`` resource id when present, else the legacy id."""
        return self.resource_id or self.id

    @property
    def company_ids(self) -> list[str]:
        return [value for value in (self.company_resource_id, self.company_id) if value]

    @property
    def tracking_number(self) -> str | None:
        return self.tracking_phone_number or self.trackingnum

    def dedupe_key(self, event_type: str) -> str:
        key = f"{self.call_id}:{event_type}"
        if event_type == "call.modified":
            key += ":" + ",".join(self.changes)
        return key
