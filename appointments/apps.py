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


def _register_erasure() -> None:
    """What this app holds on a person, for the core's erase_contact / export_contact."""
    from appointments import erasure as appointments_erasure
    from otto import erasure

    erasure.register(
        "appointments", erase=appointments_erasure.erase, export=appointments_erasure.export
    )
