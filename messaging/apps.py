from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "SMS, consent and follow-ups"

    def ready(self) -> None:
        from integrations import inbox
        from messaging.webhooks import twilio

        # The inbox knows no provider: messaging owns the rows Twilio's events write.
        inbox.register(twilio.SOURCE)
