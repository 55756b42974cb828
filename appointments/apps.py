from django.apps import AppConfig


class AppointmentsConfig(AppConfig):
    name = "appointments"
    verbose_name = "Leads, appointments and tasks"

    def ready(self) -> None:
        from appointments import pipeline, tasks
        from calls import pipeline as calls_pipeline
        from calls import stages, sweeps
        from calls.models import Call
        from otto.queues import Queue

        # calls sits below appointments and never imports it: these registries are the seam.
        calls_pipeline.register_handoff(Call.Stage.ANALYZED, pipeline.start_apply)
        stages.register_in_progress(Call.Stage.APPLYING, Call.Stage.ANALYZED)
        sweeps.register_waiting(Call.Stage.ANALYZED, Queue.FOLLOWUPS, tasks.apply_call)
