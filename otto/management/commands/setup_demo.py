import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from otto.models import CallRailCompany, Company, PhoneNumber
from otto.schedules import sync

PASSWORD_FILE = settings.VAR_DIR / "demo-admin-password"
DEMO_SLUG = "demo"
DEMO_ORG = "org_demo"
DEMO_CALLRAIL_COMPANY = "COM0000demo"
DEMO_TRACKING_NUMBER = "+15555550100"


class Command(BaseCommand):
    help = "Create the demo company, an admin user and the schedules (for `make run`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        if settings.ENVIRONMENT == "production":
            raise CommandError("setup_demo refuses to run with ENVIRONMENT=production.")
        company, created = Company.objects.get_or_create(
            slug=DEMO_SLUG, defaults={"name": "Acme HVAC (demo)", "clerk_org_id": DEMO_ORG}
        )
        self._configure_providers(company)
        self.stdout.write(
            f"demo company: {company.name}, slug {company.slug}, Clerk org {company.clerk_org_id} "
            f"({'created' if created else 'exists'})"
        )

        password = self._password(username)
        self.stdout.write(f"admin login: {username} / {password}")
        sync()

    def _configure_providers(self, company: Company) -> None:
        """CallRail and Twilio settings that the sandbox's demo traffic matches."""
        if not company.callrail_account_id:
            company.callrail_account_id = settings.CALLRAIL_ACCOUNT_ID or "ACC0000sandbox"
        if not company.callrail_signing_key:
            company.callrail_signing_key = secrets.token_hex(16)
        if not company.callrail_api_key and settings.CALLRAIL_API_KEY:
            company.callrail_api_key = settings.CALLRAIL_API_KEY
        if not company.twilio_number and settings.TWILIO_FROM_NUMBER:
            company.twilio_number = settings.TWILIO_FROM_NUMBER
        company.save()
        # Seeded like the numbers below: the sandbox lists this id for its account, but it
        # may not be running yet, so update_company's check against it cannot run here.
        CallRailCompany.objects.get_or_create(
            callrail_company_id=DEMO_CALLRAIL_COMPANY, defaults={"company": company}
        )
        PhoneNumber.objects.get_or_create(
            number=DEMO_TRACKING_NUMBER,
            defaults={"company": company, "kind": PhoneNumber.Kind.TRACKING},
        )
        if company.twilio_number:
            PhoneNumber.objects.get_or_create(
                number=company.twilio_number,
                defaults={"company": company, "kind": PhoneNumber.Kind.SENDING},
            )

    def _password(self, username: str) -> str:
        """A random password, made once and kept in var/ so later runs can print it."""
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        saved = PASSWORD_FILE.read_text().strip() if PASSWORD_FILE.exists() else None
        if user is not None and saved and user.check_password(saved):
            return saved
        password = secrets.token_urlsafe(12)
        if user is None:
            user_model.objects.create_superuser(username, f"{username}@example.com", password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
        PASSWORD_FILE.write_text(password + "\n")
        PASSWORD_FILE.chmod(0o600)
        return password
