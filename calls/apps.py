from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls and the pipeline"

    def ready(self) -> None:
        from calls import selectors
        from calls.serializers import CallSerializer
        from otto import timeline

        timeline.register(
            timeline.TimelineSource(
                type="call",
                at="started_at",
                rows=selectors.contact_calls,
                serializer=CallSerializer,
            )
        )
