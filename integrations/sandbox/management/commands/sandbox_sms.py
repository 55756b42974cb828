"""``manage.py sandbox_sms``: a simulated customer texts the company's Twilio number.

The running sandbox signs the inbound SMS exactly as Twilio does (``X-Twilio-Signature``
over ``PUBLIC_BASE_URL/sms/twilio-webhook`` and the form params) and POSTs it to the app.
``--demo`` walks a newcomer through two-way SMS and the consent gate against the running
app (``make run``): a text and the thread it opens, a reply through the API, STOP and the
opt-out it records, and a send after it refused with 422 ``recipient_opted_out``.
Also home to the helpers the sandbox commands share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.sandbox.management.commands.sandbox_token import token_spec
from otto.commands import find_company
from otto.models import Company

WEBHOOK_PATH = "/sms/twilio-webhook"
DEMO_CUSTOMER = "+13035550142"
T = TypeVar("T")


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
    help = (
        "Have the sandbox's Twilio deliver a signed inbound SMS to the running app, or with "
        "--demo walk through a thread, STOP and a refused send."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", default="demo", help="slug or id (default: demo)")
        parser.add_argument("--from", dest="sender", help="E.164, e.g. +1617…")
        parser.add_argument("--body")
        parser.add_argument(
            "--demo",
            action="store_true",
            help=f"the walkthrough (from --from, default {DEMO_CUSTOMER}); needs `make run`",
        )
        parser.add_argument("--wait", type=float, default=30, help="seconds per step (demo)")

    def handle(
        self,
        *args: Any,
        company: str,
        sender: str | None,
        body: str | None,
        demo: bool,
        wait: float,
        **options: Any,
    ) -> None:
        tenant = find_company(company)
        if not tenant.twilio_number:
            raise CommandError(
                f"Company {tenant.slug!r} has no Twilio number (Company.twilio_number)."
            )
        if demo:
            walkthrough = Demo(self, tenant, sender or DEMO_CUSTOMER, wait)
            try:
                walkthrough.run()
            finally:
                # Closing ends the kept-alive connection (and the server thread holding it).
                walkthrough.api.close()
            return
        if not sender or body is None:
            raise CommandError("--from and --body are required (or --demo).")
        result = text_in(tenant, sender, body)
        status = result["status"]
        line = f"{result['sid']}: {sender} → {tenant.twilio_number} delivered to {result['url']}"
        line += f": HTTP {status}"
        ok = isinstance(status, int) and 200 <= status < 300
        self.stdout.write(self.style.SUCCESS(line) if ok else self.style.WARNING(line))


def text_in(tenant: Company, sender: str, body: str) -> dict[str, Any]:
    """The sandbox's Twilio delivers ``body`` from ``sender`` to the tenant's number."""
    url = settings.PUBLIC_BASE_URL.rstrip("/") + WEBHOOK_PATH
    return sandbox_post(
        "/_sandbox/twilio/sms",
        {"from": sender, "to": tenant.twilio_number, "body": body, "url": url},
    )


class Demo:
    """The walkthrough: every step goes through the app's public surface (signed webhooks
    from the sandbox, the REST API with a manager's token), as a real client would."""

    def __init__(self, command: BaseCommand, tenant: Company, customer: str, wait: float):
        self.out, self.style = command.stdout, command.style
        self.tenant, self.customer, self.wait = tenant, customer, wait
        self.number = 0
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        if not tenant.clerk_org_id:
            raise CommandError(f"Company {tenant.slug!r} has no clerk_org_id: no token reaches it.")
        token = sandbox_post("/clerk/tokens", token_spec(tenant, "manager"))["token"]
        self.api = httpx.Client(
            base_url=f"{base}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
        )

    def run(self) -> None:
        tenant, customer = self.tenant, self.customer
        self.say(f"Two-way SMS for {tenant.name} (texts to {tenant.twilio_number}).")
        self.say("The sandbox plays Twilio and the customer: no text reaches a phone.")
        self.say("")
        if self.consent()["opted_out"]:
            self.step(f"{customer} opted out in an earlier run: the customer texts START first.")
            self.text("START")
            self.until(lambda: not self.consent()["opted_out"], "the opt-in")
            self.say("   consent: opted back in (keyword START)")

        hello = "Hi, is my appointment still on for Tuesday?"
        self.step(f'The customer {customer} texts "{hello}"')
        self.text(hello)
        thread = self.until(lambda: self.thread(hello), "the thread")
        self.say(
            f"   thread {thread['id']}: {thread['phone']}, {thread['unread']} unread, "
            f'"{thread["last_message_preview"]}"'
        )
        messages = f"/threads/{thread['id']}/messages/"

        self.step(f"The office replies through the API: POST /api/v1{messages}")
        sent = self.request("POST", messages, json={"body": "Yes, see you Tuesday at 10."})
        self.say(f"   HTTP {sent.status_code}: {sent.json().get('status', sent.text)}")
        # Twilio's status callbacks move it on (sent, delivered); the thread shows it either way.
        self.poll(lambda: self.outbound_done(messages))
        self.step(f"The thread's latest texts, oldest first (GET /api/v1{messages}):")
        latest = self.request("GET", messages, params={"page_size": 6}).json()["results"]
        for message in reversed(latest):
            arrow = "←" if message["direction"] == "inbound" else "→"
            self.say(
                f"   {arrow} {message['direction']:<8} {message['status']:<9} {message['body']}"
            )

        self.step('The customer texts "STOP"')
        self.text("STOP")
        state = self.until(lambda: self.consent() if self.consent()["opted_out"] else None, "STOP")
        latest = state["history"][0]
        self.say(
            f"   GET /api/v1/consent/?phone={customer}: state {state['state']}, "
            f"source {latest['source']}, caused by message {latest['message']}, "
            f"at {latest['created_at']}"
        )

        self.step(f"The office tries to text again: POST /api/v1{messages}")
        refused = self.request("POST", messages, json={"body": "Are you sure? We have a discount."})
        error = refused.json().get("error", {})
        line = f"   HTTP {refused.status_code} {error.get('code')}: {error.get('message')}"
        ok = refused.status_code == 422 and error.get("code") == "recipient_opted_out"
        self.say(self.style.SUCCESS(line) if ok else self.style.ERROR(line))
        self.say("   Nothing went to Twilio; the refused message is stored blocked, with why.")
        self.say("")
        admin = settings.PUBLIC_BASE_URL.rstrip("/") + "/admin/messaging/thread/"
        self.say(
            f"See the thread and the consent ledger in the admin: {admin}{thread['id']}/change/"
        )
        if not ok:
            raise CommandError("The send after STOP was not refused as expected.")

    # --- steps -------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.api.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CommandError(
                f"The app is not reachable at {self.api.base_url} ({type(exc).__name__}):"
                " is `make run` up?"
            ) from exc

    def say(self, line: str) -> None:
        self.out.write(line)

    def step(self, line: str) -> None:
        self.number += 1
        self.say(self.style.MIGRATE_HEADING(f"{self.number}. {line}"))

    def text(self, body: str) -> None:
        status = text_in(self.tenant, self.customer, body)["status"]
        self.say(f"   the sandbox's Twilio delivered it, signed; the app answered HTTP {status}")
        if status != 200:
            raise CommandError(f"The app refused the text (HTTP {status}); is `make run` up?")

    def poll(self, probe: Callable[[], T | None]) -> T | None:
        """``probe``'s first answer within the wait: the worker processes webhooks
        asynchronously."""
        deadline = time.monotonic() + self.wait
        while not (found := probe()) and time.monotonic() < deadline:
            time.sleep(0.5)
        return found or None

    def until(self, probe: Callable[[], T | None], what: str) -> T:
        found = self.poll(probe)
        if found is None:
            raise CommandError(f"No {what} after {self.wait:.0f}s: is the worker running?")
        return found

    def consent(self) -> dict[str, Any]:
        response = self.request("GET", "/consent/", params={"phone": self.customer})
        if response.status_code != 200:
            raise CommandError(
                f"GET consent/ answered HTTP {response.status_code}: {response.text}"
            )
        answer: dict[str, Any] = response.json()
        return answer

    def thread(self, last_text: str) -> dict[str, Any] | None:
        """The customer's thread once ``last_text`` has been threaded into it."""
        rows = self.request("GET", "/threads/", params={"phone": self.customer}).json()["results"]
        return rows[0] if rows and rows[0]["last_message_preview"] == last_text else None

    def outbound_done(self, messages: str) -> bool:
        rows = self.request("GET", messages).json()["results"]
        return bool(rows) and rows[0]["status"] in ("sent", "delivered", "failed", "undelivered")
