"""``manage.py sandbox_sms``: a simulated customer texts the company's Twilio number.

The running sandbox signs the inbound SMS exactly as Twilio does (``X-Twilio-Signature``
over ``PUBLIC_BASE_URL/sms/twilio-webhook`` and the form params) and POSTs it to the app.
Also home to the helpers the sandbox commands share.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from otto.commands import find_company

WEBHOOK_PATH = "/sms/twilio-webhook"


def sandbox_post(path: str, body: dict[str, Any], *, timeout: float = 15.0) -> dict[str, Any]:
    """POST to the running sandbox's control API; a CommandError says what went wrong."""
    if settings.ENVIRONMENT == "production":
        raise CommandError("The sandbox commands refuse to run with ENVIRONMENT=production.")
    if not settings.SANDBOX or not settings.SANDBOX_URL:
        raise CommandError(
            "The sandbox is off: set SANDBOX=1 (or SANDBOX_URL), as `make run` does."
        )
    url = settings.SANDBOX_URL.rstrip("/") + path
    try:
        response = httpx.post(url, json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise CommandError(
            f"The sandbox is not reachable at {settings.SANDBOX_URL} ({type(exc).__name__})."
            " Start it with `python manage.py sandbox` or `make run`."
        ) from exc
    if response.status_code >= 300:
        raise CommandError(
            f"The sandbox refused {path}: HTTP {response.status_code} {response.text[:300]}"
        )
    try:
        answer: dict[str, Any] = response.json()  # the sandbox's control API answers objects
        return answer
    except ValueError as exc:
        raise CommandError(f"The sandbox answered {path} with a body that is not JSON.") from exc


class Command(BaseCommand):
    help = "Have the sandbox's Twilio deliver a signed inbound SMS to the running app."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", default="demo", help="slug or id (default: demo)")
        parser.add_argument("--from", dest="sender", required=True, help="E.164, e.g. +1617…")
        parser.add_argument("--body", required=True)

    def handle(self, *args: Any, company: str, sender: str, body: str, **options: Any) -> None:
        tenant = find_company(company)
        if not tenant.twilio_number:
            raise CommandError(
                f"Company {tenant.slug!r} has no Twilio number (Company.twilio_number)."
            )
        url = settings.PUBLIC_BASE_URL.rstrip("/") + WEBHOOK_PATH
        result = sandbox_post(
            "/_sandbox/twilio/sms",
            {"from": sender, "to": tenant.twilio_number, "body": body, "url": url},
        )
        status = result["status"]
        line = (
            f"{result['sid']}: {sender} → {tenant.twilio_number} delivered to {url}: HTTP {status}"
        )
        ok = isinstance(status, int) and 200 <= status < 300
        self.stdout.write(self.style.SUCCESS(line) if ok else self.style.WARNING(line))
