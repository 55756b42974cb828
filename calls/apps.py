from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls and the pipeline"

    def ready(self) -> None:
        _register_erasure()
        from django.db.models.signals import post_delete, post_save

        from calls import metrics, retention, selectors
        from calls.serializers import CallSerializer
        from calls.webhooks import callrail, shunya
        from integrations import inbox
        from otto import metrics as otto_metrics
        from otto import retention as otto_retention
        from otto import timeline
        from otto.models import Company

        timeline.register(
            timeline.TimelineSource(
                type="call",
                at="started_at",
                rows=selectors.contact_calls,
                serializer=CallSerializer,
            )
        )
        otto_metrics.register_collector("calls_by_stage", metrics.collect_calls_by_stage)
        otto_retention.register(
            "recordings",
            "recordings",
            retention.purge_recordings,
            files_in_use=retention.recordings_in_use,
        )
        otto_retention.register("transcripts", "transcripts", retention.purge_transcripts)
        # The inbox knows no provider: calls owns the rows CallRail and Shunya events write.
        inbox.register(callrail.SOURCE)
        inbox.register(shunya.SOURCE)
        # Saves in this process take effect at once; other processes within
        # TENANT_MEMORY_SECONDS, or at once for any delivery the old key does not verify.
        for signal in (post_save, post_delete):
            signal.connect(
                callrail.forget_tenants, sender=Company, dispatch_uid="callrail-forget-tenants"
            )


def _register_erasure() -> None:
    """What this app holds on a person, for the core's erase_contact / export_contact."""
    from calls import erasure as calls_erasure
    from otto import erasure

    erasure.register("calls", erase=calls_erasure.erase, export=calls_erasure.export)
