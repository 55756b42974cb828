"""``manage.py sandbox_calls``: the sandbox's CallRail phones the app, as real traffic would.

Reads the tenant's CallRail settings from the database, asks the running sandbox to create
``--count`` simulated calls from the scripted scenarios, and has it deliver one signed
post-call webhook per call to ``PUBLIC_BASE_URL/callrail/call.completed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.sandbox import scenarios
from integrations.sandbox.management.commands.sandbox_sms import sandbox_post
from otto.commands import find_company
from otto.models import PhoneNumber
from otto.selectors import callrail_company_ids

if TYPE_CHECKING:
    from otto.crypto import Secret

WEBHOOK_PATH = "/callrail/call.completed"


class Command(BaseCommand):
    help = "Have the sandbox's CallRail deliver signed post-call webhooks to the running app."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", default="demo", help="slug or id (default: demo)")
        parser.add_argument("--count", type=int, default=5, help="number of calls (1-200)")
        parser.add_argument(
            "--scenario",
            choices=sorted(scenarios.SCENARIOS),
            help="one scenario for every call (default: cycle through all of them)",
        )

    def handle(
        self, *args: Any, company: str, count: int, scenario: str | None, **options: Any
    ) -> None:
        if not 1 <= count <= 200:
            raise CommandError("--count must be between 1 and 200.")
        tenant = find_company(company)
        tracking = (
            PhoneNumber.objects.filter(company=tenant, kind=PhoneNumber.Kind.TRACKING)
            .order_by("created_at", "pk")
            .values_list("number", flat=True)
            .first()
        )
        callrail_ids = callrail_company_ids(tenant)
        missing = [
            name
            for name, present in (
                ("callrail_account_id", tenant.callrail_account_id),
                ("callrail_company_ids", callrail_ids),
                ("callrail_signing_key", tenant.callrail_signing_key),
                ("a tracking phone number", tracking),
            )
            if not present
        ]
        if missing:
            raise CommandError(
                f"Company {tenant.slug!r} lacks {', '.join(missing)}; set them in the admin or"
                " with `manage.py setup_demo` for the demo company."
            )
        webhook_url = settings.PUBLIC_BASE_URL.rstrip("/") + WEBHOOK_PATH
        spec = {
            "account_id": tenant.callrail_account_id,
            "company_id": callrail_ids[0],
            "company_name": tenant.name,
            "tracking_number": tracking,
            # cast: `missing` above refused a tenant without a signing key.
            "signing_key": cast("Secret", tenant.callrail_signing_key).reveal(),
            "webhook_url": webhook_url,
            "count": count,
            "scenario": scenario,
        }
        if tenant.callrail_api_key:
            # So the sandbox's API accepts the tenant's key when the app fetches the calls.
            spec["api_key"] = tenant.callrail_api_key.reveal()
        # Each delivery waits for the app (up to 10 s each in the sandbox).
        response = sandbox_post("/_sandbox/callrail/calls", spec, timeout=15.0 + 11.0 * count)
        calls = response["calls"]

        self.stdout.write(f"{len(calls)} simulated call(s) for {tenant.name} → {webhook_url}")
        for call in calls:
            status = call["status"]
            line = (
                f"  {call['id']}  {call['scenario']:<16} {call['customer_name']:<18}"
                f" {call['customer_phone_number']}  → HTTP {status or 'no answer'}"
            )
            ok = isinstance(status, int) and 200 <= status < 300
            self.stdout.write(self.style.SUCCESS(line) if ok else self.style.WARNING(line))
        accepted = sum(
            1 for c in calls if isinstance(c["status"], int) and 200 <= c["status"] < 300
        )
        summary = f"{accepted}/{len(calls)} webhook(s) accepted by the app."
        self.stdout.write(self.style.SUCCESS(summary) if accepted == len(calls) else summary)
        if accepted < len(calls):
            self.stdout.write(
                "Not accepted: is the app running at PUBLIC_BASE_URL "
                f"({settings.PUBLIC_BASE_URL}), with this company's signing key? CallRail never "
                "resends a webhook; the reconciliation schedule picks missed calls up."
            )
