"""Drop ``Message.send_key``: nothing could check it.

Twilio's Messages API takes no client-side idempotency key, and none of what a send
passes comes back in the list a retry reconciles against; the retry matches on the claim
time, sender, recipient and body instead (messaging.sending, docs/messaging.md).
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0002_message_reply_to'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='message',
            name='send_key',
        ),
    ]
