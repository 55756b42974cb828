from typing import Any

from django.apps import AppConfig


def _appointment_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if created:
        from messaging import recovery

        recovery.on_appointment(instance)


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "SMS, consent and follow-ups"

    def ready(self) -> None:
        _register_erasure()
        from django.db.models.signals import post_delete, post_save

        from analysis import kpis as analysis_kpis
        from appointments import pipeline as appointments_pipeline
        from appointments.models import Appointment
        from calls import pipeline
        from calls.models import Call
        from integrations import inbox
        from messaging import followups, kpi_marks, kpis, recovery, retention, selectors
        from messaging.models import Message, MissedCallRecovery
        from messaging.serializers import (
            AiCallSerializer,
            ConsentEventSerializer,
            MessageSerializer,
        )
        from messaging.webhooks import bland, twilio
        from otto import retention as otto_retention
        from otto import timeline

        # The inbox knows no provider: messaging owns the rows Twilio's and Bland's write.
        inbox.register(twilio.SOURCE)
        inbox.register(bland.SOURCE)
        # A missed call starts its recovery (the text-back through the gate).
        pipeline.register_missed_call(recovery.start)
        # A call whose outcomes are written gets its follow-ups (or a booking cancels them).
        pipeline.register_handoff(Call.Stage.APPLIED, followups.on_applied)
        # What ends a recovery, at the event: a later answered call, the missed call's
        # analysis saying spam; and a booking recovers it.
        pipeline.register_answered_call(recovery.on_answered_call)
        appointments_pipeline.register_applied(recovery.on_analysis)
        post_save.connect(
            _appointment_saved, sender=Appointment, dispatch_uid="messaging-recovered"
        )
        timeline.register(
            timeline.TimelineSource(
                type="ai_call",
                at="completed_at",
                rows=selectors.contact_ai_calls,
                serializer=AiCallSerializer,
            )
        )
        # metrics/recovery/ and the overview's recovery_rate, call figures the KPIs' daily
        # rollup keeps; what moves them marks the calls' days.
        analysis_kpis.register_recovery(kpis.FIGURES)
        for name, signal in (("saved", post_save), ("deleted", post_delete)):
            for sender, receiver in (
                (MissedCallRecovery, kpi_marks.mark_recovery),
                (Appointment, kpi_marks.mark_appointment),
                (Message, kpi_marks.message_written),
            ):
                uid = f"kpi-{sender.__name__}-{name}"
                signal.connect(receiver, sender=sender, dispatch_uid=uid)
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
        otto_retention.register(
            "ai_call_transcripts", "transcripts", retention.purge_ai_call_transcripts
        )


def _register_erasure() -> None:
    """What this app holds on a person, for the core's erase_contact / export_contact."""
    from messaging import erasure as messaging_erasure
    from otto import erasure

    erasure.register("messaging", erase=messaging_erasure.erase, export=messaging_erasure.export)
