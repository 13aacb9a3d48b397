"""Tables of notification channels: a channel (e-mail, Slack, Teams, webhook, ...), each
notification sent through it for an event, and each delivery attempt. Imported by
monitoring/models.py, so they belong to the monitoring app."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from watchkeeper.core.models import Client, Contact, Event

from ..choices import ChannelKind, NotificationStatus, State, WebhookFormat


class NotificationChannel(models.Model):
    """Where alert notifications go: SMTP recipients, a client's contacts, or a webhook
    (generic JSON, Slack or Teams body). No client: every client's alerts."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    recipients = models.JSONField(default=list, blank=True)  # email addresses
    contacts = models.ManyToManyField(Contact, blank=True, related_name="+")
    # The webhook URL (Slack/Teams URLs are the credential): core.crypto token, purpose
    # monitoring.channel-url; read it with notify.channel_url(), shown masked.
    url_enc = models.TextField(blank=True)
    webhook_format = models.CharField(max_length=10, choices=WebhookFormat.choices,
                                      default=WebhookFormat.GENERIC)
    event_kinds = models.JSONField(default=list, blank=True)  # empty: opened + resolved
    min_severity = models.CharField(max_length=10, choices=State.choices,
                                    default=State.WARNING)
    subject_template = models.CharField(max_length=300, blank=True)
    body_template = models.TextField(blank=True)
    digest_minutes = models.PositiveIntegerField(null=True, blank=True)
    next_digest_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Notification(models.Model):
    """One alert event for one channel: the claim that makes each send happen once
    (unique per event and channel), and its outcome."""

    tenant_path = "client"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE,
                                related_name="notifications")
    alert = models.ForeignKey("monitoring.Alert", on_delete=models.CASCADE, null=True, blank=True,
                              related_name="notifications")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+")
    status = models.CharField(max_length=12, choices=NotificationStatus.choices,
                              default=NotificationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    # The sender's lease: a send that died mid-way is taken over after it expires.
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["event", "channel"],
                                               name="notification_once")]
        indexes = [models.Index(fields=["channel", "status"], name="notification_ch_idx")]


class NotificationAttempt(models.Model):
    """Every try to send a notification, successful or not."""

    tenant_path = "notification__client"

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE,
                                     related_name="attempt_log")
    at = models.DateTimeField(default=now)
    ok = models.BooleanField()
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
