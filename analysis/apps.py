from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = "Call analysis and KPIs"

    def ready(self) -> None:
        _register_erasure()
        from analysis import (
            filters,
            openapi,  # noqa: F401 -- registers ``analysis`` in the schema
            pipeline,
            retention,
            rollup,
            serializers,
            shunya,
            tasks,
        )
        from calls import filters as call_filters
        from calls import pipeline as calls_pipeline
        from calls import shunya as shunya_jobs
        from calls import stages, sweeps
        from calls.models import Call, ShunyaJob
        from calls.serializers import register_detail_field
        from otto import retention as otto_retention
        from otto.queues import Queue

        # calls sits below analysis and never imports it: these registries are the seam.
        calls_pipeline.register_handoff(Call.Stage.TRANSCRIBED, pipeline.start_analysis)
        stages.register_in_progress(Call.Stage.ANALYZING, Call.Stage.TRANSCRIBED)
        sweeps.register_waiting(Call.Stage.TRANSCRIBED, Queue.ANALYSIS, tasks.analyze_call)
        register_detail_field("analysis", serializers.call_detail_analysis)
        for name, call_filter in filters.FILTERS.items():
            call_filters.register_filter(name, call_filter)
        # Shunya's poller and webhook (calls) settle analysis jobs through these.
        shunya_jobs.register_job_type(
            ShunyaJob.JobType.ANALYSIS, apply=shunya.apply_job, fail=shunya.fail_job
        )
        # An objection's quote is transcript text: it goes with the transcript's window.
        otto_retention.register("analysis_quotes", "transcripts", retention.purge_quotes)
        # The KPIs' daily rollup hears of every write that changes a day's figures.
        rollup.connect()


def _register_erasure() -> None:
    """What this app holds on a person, for the core's erase_contact / export_contact."""
    from analysis import erasure as analysis_erasure
    from otto import erasure

    erasure.register("analysis", erase=analysis_erasure.erase, export=analysis_erasure.export)
