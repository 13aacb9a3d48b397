"""Form of the heartbeat page; the client list is scoped to the user."""

from __future__ import annotations

from zoneinfo import available_timezones

from django import forms

from watchkeeper.core.models import Client
from watchkeeper.core.tenancy import scoped

from .models import HeartbeatSchedule


class HeartbeatForm(forms.Form):
    client = forms.ModelChoiceField(queryset=Client.objects.none())
    name = forms.CharField(max_length=200, help_text="e.g. Nightly backup of FS01")
    schedule = forms.ChoiceField(choices=HeartbeatSchedule.choices)
    period_seconds = forms.IntegerField(min_value=60, required=False, initial=86400,
                                        label="Period (seconds)",
                                        help_text="For 'every period': 86400 is daily.")
    cron = forms.CharField(max_length=100, required=False, label="Cron expression",
                           help_text="For 'cron schedule': five fields, e.g. 30 2 * * *.")
    tz = forms.ChoiceField(label="Time zone", initial="UTC")
    grace_seconds = forms.IntegerField(min_value=0, initial=3600, label="Grace (seconds)",
                                       help_text="How late a call may be before it alerts.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = scoped(Client.objects.all(), user)
        self.fields["tz"].choices = [(z, z) for z in sorted(available_timezones())]
