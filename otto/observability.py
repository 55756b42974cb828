import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration


def init_sentry(dsn: str, environment: str, traces_sample_rate: float) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        traces_sample_rate=traces_sample_rate,
        # Phone numbers and addresses are our customers' customers' data.
        send_default_pii=False,
        integrations=[DjangoIntegration(), LoggingIntegration(event_level=None)],
    )
