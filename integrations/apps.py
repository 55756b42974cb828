from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Provider integrations"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from integrations.callrail.webhooks import forget_tenants
        from otto.models import Company

        # Saves in this process take effect at once; other processes within
        # TENANT_MEMORY_SECONDS, or at once for any delivery the old key does not verify.
        for signal in (post_save, post_delete):
            signal.connect(forget_tenants, sender=Company, dispatch_uid="callrail-forget-tenants")
