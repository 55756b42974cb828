from typing import Any

from django.apps import AppConfig


class AppointmentsConfig(AppConfig):
    name = "appointments"
    verbose_name = "Leads, appointments and tasks"

    def ready(self) -> None:
        _register_erasure()
        from appointments import pipeline, tasks
        from calls import pipeline as calls_pipeline
        from calls import stages, sweeps
        from calls.models import Call
        from otto.queues import Queue

        # calls sits below appointments and never imports it: these registries are the seam.
        calls_pipeline.register_handoff(Call.Stage.ANALYZED, pipeline.start_apply)
        stages.register_in_progress(Call.Stage.APPLYING, Call.Stage.ANALYZED)
        sweeps.register_waiting(Call.Stage.ANALYZED, Queue.FOLLOWUPS, tasks.apply_call)
        self._register_reads()
        _mark_kpi_days()

    @staticmethod
    def _register_reads() -> None:
        """The contact timeline's items and the calls a sales rep may see: registries of
        the layers below (the core's timeline, calls' rep scope), which never import us."""
        from appointments import selectors, serializers
        from calls.selectors import register_rep_scope
        from otto import timeline

        for source in (
            timeline.TimelineSource(
                type="lead_status",
                at="created_at",
                rows=selectors.contact_lead_changes,
                serializer=serializers.LeadHistorySerializer,
            ),
            timeline.TimelineSource(
                type="appointment",
                at="scheduled_start",
                rows=selectors.contact_appointments,
                serializer=serializers.AppointmentSerializer,
            ),
            timeline.TimelineSource(
                type="task",
                at="created_at",
                rows=selectors.contact_tasks,
                serializer=serializers.TaskSerializer,
            ),
        ):
            timeline.register(source)
        register_rep_scope("appointments", selectors.rep_calls)
        # analysis (the KPIs) sits below us too: what only appointments knows reaches it here.
        from analysis import kpis

        kpis.register_outcomes(
            kpis.Outcomes(
                booked_call=selectors.booked_call,
                tasks=selectors.kpi_tasks,
                appointments=selectors.kpi_appointments,
                call_reps=selectors.call_reps,
            )
        )


def _mark_kpi_days() -> None:
    """What appointments writes moves the KPIs' daily rollup (analysis.rollup): an
    appointment made from a call books it and names its rep; a lead's rep (or its closing)
    changes whose calls its contact's calls are. Each marks the calls' days."""
    from django.db.models.signals import post_delete, post_save

    from analysis import rollup
    from appointments.models import Appointment, Lead
    from calls.models import Call

    def appointment_written(sender: Any, instance: Appointment, **_: Any) -> None:
        rollup.mark_calls([instance.call_id])

    def lead_written(sender: Any, instance: Lead, update_fields: Any = None, **_: Any) -> None:
        if update_fields is None or not LEAD_FIELDS.isdisjoint(update_fields):
            rollup.mark_calls(Call.objects.filter(contact_id=instance.contact_id))

    for name, signal in (("saved", post_save), ("deleted", post_delete)):
        signal.connect(
            appointment_written, sender=Appointment, dispatch_uid=f"kpi-visit-{name}", weak=False
        )
        signal.connect(lead_written, sender=Lead, dispatch_uid=f"kpi-lead-{name}", weak=False)


# The Lead fields that decide whose calls its contact's calls are (the KPIs' rep rows).
LEAD_FIELDS = frozenset({"assigned_rep", "assigned_rep_id", "is_active", "contact", "contact_id"})


def _register_erasure() -> None:
    """What this app holds on a person, for the core's erase_contact / export_contact."""
    from appointments import erasure as appointments_erasure
    from otto import erasure

    erasure.register(
        "appointments", erase=appointments_erasure.erase, export=appointments_erasure.export
    )
