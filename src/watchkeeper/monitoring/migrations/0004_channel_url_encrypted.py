"""Notification channel URLs (Slack/Teams/webhook URLs carry their credential) are stored
encrypted: existing plain URLs are encrypted into url_enc, then the plain column goes."""

from django.db import migrations, models

PURPOSE = "monitoring.channel-url"


def encrypt_urls(apps, schema_editor):
    from watchkeeper.core import crypto

    Channel = apps.get_model("monitoring", "NotificationChannel")
    for channel in Channel.objects.exclude(url=""):
        channel.url_enc = crypto.encrypt(channel.url, PURPOSE)
        channel.save(update_fields=["url_enc"])


def decrypt_urls(apps, schema_editor):
    from watchkeeper.core import crypto

    Channel = apps.get_model("monitoring", "NotificationChannel")
    for channel in Channel.objects.exclude(url_enc=""):
        channel.url = crypto.decrypt(channel.url_enc, PURPOSE)[:500]
        channel.save(update_fields=["url"])


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0003_heartbeat_pending"),
    ]

    operations = [
        migrations.AddField(
            model_name="notificationchannel",
            name="url_enc",
            field=models.TextField(blank=True),
        ),
        migrations.RunPython(encrypt_urls, decrypt_urls),
        migrations.RemoveField(
            model_name="notificationchannel",
            name="url",
        ),
    ]
