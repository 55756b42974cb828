from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    """The provider adapters and the generic webhook inbox. Webhook sources are registered
    by the apps that own the rows their events write (``calls``, ``otto``), not here."""

    name = "integrations"
    verbose_name = "Provider integrations"

    def ready(self) -> None:
        from integrations import services
        from otto import retention

        retention.register("webhook_bodies", "webhook_bodies", services.purge_webhook_bodies)
