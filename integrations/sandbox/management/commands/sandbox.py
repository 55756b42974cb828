from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.sandbox.config import DEFAULT_URL
from integrations.sandbox.server import Sandbox


class Command(BaseCommand):
    help = "Run the provider sandbox: every provider's API on one local port (SANDBOX_URL)."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.ENVIRONMENT == "production":
            raise CommandError("The sandbox refuses to run with ENVIRONMENT=production.")
        url = urlsplit(settings.SANDBOX_URL or DEFAULT_URL)
        sandbox = Sandbox(url.hostname or "127.0.0.1", url.port or 8001, settings.PUBLIC_BASE_URL)
        endpoints = len([r for r in sandbox.routes if not r.name.startswith("_sandbox.")])
        self.stdout.write(f"provider sandbox on {sandbox.url} ({endpoints} endpoints)")
        try:
            sandbox.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            sandbox.httpd.server_close()
