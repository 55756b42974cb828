import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from otto import preflight


class Command(BaseCommand):
    help = (
        "The deployment checklist for this ENVIRONMENT: one line per item, ✓ or ✗ with a "
        "hint, then the webhook URLs to give each provider. Exits 1 on any ✗."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="One JSON document instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        items = preflight.run()
        urls = preflight.webhook_urls()
        ok = all(item.ok for item in items)
        if options["json"]:
            document = {
                "environment": settings.ENVIRONMENT,
                "ok": ok,
                "items": [item.as_dict() for item in items],
                "webhook_urls": urls,
            }
            self.stdout.write(json.dumps(document, indent=2))
        else:
            self.stdout.write(f"preflight for ENVIRONMENT={settings.ENVIRONMENT}")
            for item in items:
                mark = self.style.SUCCESS("✓") if item.ok else self.style.ERROR("✗")
                self.stdout.write(f"{mark} {item.name}: {item.detail}")
                if not item.ok:
                    self.stdout.write(f"    hint: {item.hint}")
            self.stdout.write("\nwebhook URLs to configure at each provider:")
            for label, url in urls.items():
                self.stdout.write(f"  {label}: {url}")
        if not ok:
            failed = sum(not item.ok for item in items)
            raise CommandError(f"{failed} preflight item(s) failed", returncode=1)
