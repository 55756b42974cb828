import time
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from otto.models import Company


def token_spec(
    company: Company,
    role: str,
    *,
    user: str = "",
    email: str = "",
    name: str = "",
    version: str = "v2",
    lifetime: int = 3600,
) -> dict[str, Any]:
    """What the sandbox's ``POST /clerk/tokens`` mints: a member of ``company`` in ``role``."""
    slug = company.slug
    return {
        "sub": user or f"user_{slug}_{role}".replace(":", "_"),
        "email": email or f"{role.replace(':', '_')}@{slug}.example.com",
        "name": name or f"{company.name} {role}",
        "org_id": company.clerk_org_id,
        "org_slug": slug,
        "org_role": role,
        "version": version,
        "lifetime": lifetime,
    }


class Command(BaseCommand):
    help = (
        "Print a Clerk-style session JWT for a company, minted by the running sandbox's "
        'issuer, e.g. curl -H "Authorization: Bearer $(manage.py sandbox_token --company demo)"'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", required=True, help="the company's slug")
        parser.add_argument("--role", default="manager", help="the Clerk org role, e.g. csr")
        parser.add_argument("--email", default="")
        parser.add_argument("--name", default="")
        parser.add_argument("--user", default="", help="the Clerk user id (sub)")
        parser.add_argument("--claims-version", choices=["v1", "v2"], default="v2")
        parser.add_argument(
            "--lifetime",
            type=int,
            default=8 * 3600,
            help="seconds; Clerk's own tokens live 60 s, a dev token lasts a working day",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            help="seconds to keep retrying while the sandbox starts (`make run`)",
        )
        parser.add_argument(
            "--curl",
            action="store_true",
            help="also print a curl line that calls the API at PUBLIC_BASE_URL (`make token`)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.ENVIRONMENT == "production":
            raise CommandError("sandbox_token refuses to run with ENVIRONMENT=production.")
        if not settings.SANDBOX_URL:
            raise CommandError("SANDBOX_URL is not set: run with SANDBOX=1 (as `make run` does).")
        company = Company.objects.filter(slug=options["company"]).first()
        if company is None:
            raise CommandError(f"No company with slug {options['company']!r}.")
        if not company.clerk_org_id:
            raise CommandError(
                f"Company {company.slug!r} has no clerk_org_id, so no token can reach it."
            )
        role, slug = options["role"], company.slug
        spec = token_spec(
            company,
            role,
            user=options["user"],
            email=options["email"],
            name=options["name"],
            version=options["claims_version"],
            lifetime=options["lifetime"],
        )
        response = self._mint(spec, deadline=time.monotonic() + options["wait"])
        if response.status_code != 201:
            raise CommandError(f"The sandbox refused: HTTP {response.status_code} {response.text}")
        expected = f"{settings.SANDBOX_URL}/clerk"
        if settings.CLERK_ISSUER != expected:
            self.stderr.write(
                f"warning: CLERK_ISSUER is {settings.CLERK_ISSUER!r}, not {expected!r}; "
                "the API will refuse this token."
            )
        token = response.json()["token"]
        if not options["curl"]:
            self.stdout.write(token)
            return
        # The app's own address, never $PORT: under honcho each process gets a PORT of its
        # own (web 8080, this one 8380), so $PORT here would name a port nobody listens on.
        me = settings.PUBLIC_BASE_URL.rstrip("/") + "/api/v1/me/"
        self.stdout.write(f"{role} token for {slug}: {token}")
        self.stdout.write(f'curl -H "Authorization: Bearer {token}" {me}')

    def _mint(self, spec: dict[str, Any], deadline: float) -> httpx.Response:
        url = f"{settings.SANDBOX_URL}/clerk/tokens"
        while True:
            try:
                return httpx.post(url, json=spec, timeout=5)
            except httpx.HTTPError as exc:
                if time.monotonic() >= deadline:
                    raise CommandError(
                        f"The sandbox is not answering at {settings.SANDBOX_URL} ({exc}); "
                        "start it with `make run` or `manage.py sandbox`."
                    ) from None
                time.sleep(0.5)
