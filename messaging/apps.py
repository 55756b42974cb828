from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "SMS, consent and follow-ups"

    def ready(self) -> None:
        _register_erasure()
        from analysis import kpis as analysis_kpis
        from calls import pipeline
        from calls.models import Call
        from integrations import inbox
        from messaging import followups, kpis, recovery, retention, selectors
        from messaging.serializers import ConsentEventSerializer, MessageSerializer
        from messaging.webhooks import twilio
        from otto import retention as otto_retention
        from otto import timeline

        # The inbox knows no provider: messaging owns the rows Twilio's events write.
        inbox.register(twilio.SOURCE)
        # A missed call starts its recovery (the text-back through the gate).
        pipeline.register_missed_call(recovery.start)
        # A call whose outcomes are written gets its follow-ups (or a booking cancels them).
        pipeline.register_handoff(Call.Stage.APPLIED, followups.on_applied)
        # metrics/recovery/ and the overview's recovery_rate.
        analysis_kpis.register_recovery(kpis.recovery_figures)
        # A contact's texts and consent changes appear among their calls.
        timeline.register(
            timeline.TimelineSource(
                type="message",
                at="created_at",
                rows=selectors.contact_messages,
                serializer=MessageSerializer,
            )
        )
        timeline.register(
            timeline.TimelineSource(
                type="consent",
                at="created_at",
                rows=selectors.contact_consent,
                serializer=ConsentEventSerializer,
            )
        )
        otto_retention.register("messages", "messages", retention.purge_messages)
        otto_retention.register("message_previews", "messages", retention.purge_previews)


def _register_erasure() -> None:
    """What this app holds on a person, for the core's erase_contact / export_contact."""
    from messaging import erasure as messaging_erasure
    from otto import erasure

    erasure.register("messaging", erase=messaging_erasure.erase, export=messaging_erasure.export)
