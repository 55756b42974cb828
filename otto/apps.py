from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OttoConfig(AppConfig):
    name = "otto"
    verbose_name = "Otto core"

    def ready(self) -> None:
        from integrations import errors, http, inbox
        from otto import (
            checks,  # noqa: F401 - registers the system checks
            logging,
            metrics,
        )
        from otto.webhooks import clerk

        # The adapters sit below the core and cannot import it: the core listens to their
        # calls and hands them the current request id.
        errors.observe_provider_calls(metrics.record_provider_call)
        http.use_request_ids(logging.get_request_id)

        # The core owns Company, User and Membership, the rows Clerk's events write.
        inbox.register(clerk.SOURCE)

        # Contact erasure and export: the core's own rows; each app registers its own.
        from otto import erasure

        erasure.register_core()

        post_migrate.connect(_sync_schedules, sender=self)


def _sync_schedules(using: str = "default", **kwargs: object) -> None:
    """Every migrate leaves the Schedule table matching the registry in code."""
    from otto.schedules import sync

    sync()
