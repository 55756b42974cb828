import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from otto.models import Company
from otto.schedules import sync

PASSWORD_FILE = settings.VAR_DIR / "demo-admin-password"


class Command(BaseCommand):
    help = "Create the demo company, an admin user and the schedules (for `make run`)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options) -> None:
        if settings.ENVIRONMENT == "production":
            raise CommandError("setup_demo refuses to run with ENVIRONMENT=production.")
        company, created = Company.objects.get_or_create(
            slug="acme-hvac", defaults={"name": "Acme HVAC (demo)"}
        )
        self.stdout.write(f"demo company: {company.name} ({'created' if created else 'exists'})")

        password = self._password(username)
        self.stdout.write(f"admin login: {username} / {password}")
        sync()

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
