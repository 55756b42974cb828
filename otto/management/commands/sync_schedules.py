from typing import Any

from django.core.management.base import BaseCommand

from otto.schedules import sync


class Command(BaseCommand):
    help = "Make django-q2's Schedule table match the schedules declared in code (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = sync()
        self.stdout.write(
            "schedules: " + ", ".join(f"{count} {what}" for what, count in counts.items())
        )
