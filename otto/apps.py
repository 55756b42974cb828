from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OttoConfig(AppConfig):
    name = "otto"
    verbose_name = "Otto core"

    def ready(self) -> None:
        from otto import checks  # noqa: F401 - registers the system checks

        post_migrate.connect(_sync_schedules, sender=self)


def _sync_schedules(using: str = "default", **kwargs: object) -> None:
    """Every migrate leaves the Schedule table matching the registry in code."""
    from otto.schedules import sync

    sync()
