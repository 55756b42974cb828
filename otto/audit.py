"""The audit log: one small API that every app calls when a person (or the system) does
something ops or a tenant's managers must be able to trace later (docs/governance.md).

    audit.record(AuditAction.CALL_RETRIED, company=call.company, actor=user,
                 target_type="call", target_id=call.pk, changes={"from_stage": "ingest"})

``request`` is optional: without it, the request being served (bound by
:class:`AuditContextMiddleware`) supplies the client address and user agent, so a
service called from a view or the admin needs no extra argument; a task or a command
records none. The client address honours ``X-Forwarded-For`` only from ``TRUSTED_PROXIES``
(:func:`client_ip`).
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from otto.models import AuditAction, AuditEvent, Company, User

USER_AGENT_MAX = 200

_current: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "audit_request", default=None
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def record(
    action: AuditAction,
    *,
    company: Company | None,
    actor: Any = None,
    actor_label: str = "",
    request: HttpRequest | None = None,
    target_type: str = "",
    target_id: object = "",
    changes: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. ``company`` None is a staff-wide event (no tenant reads it).

    ``actor`` is the user who acted; None is the signed-in user of the request being
    served, if any, else the system (or whoever ``actor_label`` names, e.g. ``"clerk
    webhook"``, which also keeps the request's user out of it). ``changes`` becomes
    ``details``: field names, counts and ids, never a secret's value or a phone number in
    clear; callers pass names.
    """
    request = request if request is not None else _current.get()
    if actor is None and not actor_label and request is not None:
        # A service called from a view or the admin acts for the signed-in person.
        actor = getattr(request, "user", None)
    user = actor if isinstance(actor, User) and actor.pk is not None else None
    label = actor_label or (user.email or user.get_username() if user is not None else "system")
    return AuditEvent.objects.create(
        company=company,
        actor=user,
        actor_label=label[:254],
        action=action,
        target_type=target_type,
        target_id=str(target_id if target_id is not None else "")[:64],
        details=dict(changes or {}),
        ip_address=client_ip(request) if request is not None else None,
        user_agent=(request.headers.get("User-Agent", "") if request is not None else "")[
            :USER_AGENT_MAX
        ],
    )


# --- the client's address ------------------------------------------------------------------


@cache
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(settings.TRUSTED_PROXIES))


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    # "[2001:db8::1]:443" and "203.0.113.9:51000" are what some proxies write.
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address in network for network in trusted_networks())


def client_ip(request: HttpRequest) -> str | None:
    """The address the request came from, as far as it can be trusted.

    ``REMOTE_ADDR`` is the peer. Only when the peer is a trusted proxy is
    ``X-Forwarded-For`` read, from the right: each hop a trusted proxy appended is skipped,
    and the first address that is not a trusted proxy is the client. A peer outside
    ``TRUSTED_PROXIES`` may write anything in the header, so its header is ignored.
    """
    peer = _address(request.META.get("REMOTE_ADDR", ""))
    if peer is None:
        return None
    if not _trusted(peer):
        return str(peer)
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # A garbled hop: nothing left of it can be trusted; the last good one stands.
            break
        client = address
        if not _trusted(address):
            break
    return str(client)


# --- the request being served --------------------------------------------------------------


class AuditContextMiddleware:
    """Binds the request for :func:`record`, so services audit without being passed it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(request)
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
