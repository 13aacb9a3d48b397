"""The notification channel form (pages at /monitoring/channels/). Scope fields (client,
minimum severity, events, on/off) drive the "also notify about the N alerts open now"
offer, recomputed by htmx as they change."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from watchkeeper.core.catalogue import lookup
from watchkeeper.core.converters import parse_id
from watchkeeper.core.models import Client, Contact
from watchkeeper.core.tenancy import can_see_client, scoped

from ..choices import ChannelKind, State, WebhookFormat
from .notify import DEFAULT_KINDS, subscribable


def _event_choices() -> list[tuple[str, str]]:
    """(kind, label) of the alert kinds a channel may ask for, from the event catalogue:
    the label is the kind's short `LABEL`."""
    return [(k, lookup(k).LABEL or k) for k in subscribable()]
SEVERITY_CHOICES = [(State.WARNING, "Warning and worse"), (State.CRITICAL, "Critical only"),
                    (State.UNKNOWN, "Unknown and worse")]


class ContactChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Contact) -> str:
        return f"{obj.name} <{obj.email}> ({obj.client.name})"


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=200)
    client = forms.ModelChoiceField(queryset=Client.objects.none(), required=False,
                                    empty_label="Every client (MSP-wide)",
                                    help_text="Whose alerts the channel hears of; fixed once "
                                              "created.")
    kind = forms.ChoiceField(choices=ChannelKind.choices)
    recipients = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                 help_text="Email channels: addresses, one per line or "
                                           "separated by commas.")
    contacts = ContactChoice(queryset=Contact.objects.none(), required=False,
                             label="Client contacts",
                             help_text="Contacts channels: contacts of the channel's client.")
    url = forms.CharField(required=False, max_length=2000, label="Webhook URL",
                          help_text="Webhook channels: http(s) URL; stored encrypted and "
                                    "shown masked. Leave the masked value to keep it.")
    webhook_format = forms.ChoiceField(choices=WebhookFormat.choices, initial="generic",
                                       label="Webhook format")
    event_kinds = forms.MultipleChoiceField(
        choices=_event_choices, initial=list(DEFAULT_KINDS),
        widget=forms.CheckboxSelectMultiple, label="Events",
        error_messages={"required": "Choose at least one event."})
    min_severity = forms.ChoiceField(choices=SEVERITY_CHOICES, initial=State.WARNING,
                                     label="Minimum severity")
    subject_template = forms.CharField(required=False, max_length=300,
                                       help_text="Empty: the default subject.")
    body_template = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}),
                                    help_text="Empty: the default body.")
    digest_minutes = forms.IntegerField(required=False, min_value=1, max_value=60 * 24,
                                        label="Digest every (minutes)",
                                        help_text="Empty: send each notification at once.")
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    catch_up = forms.BooleanField(required=False)

    def __init__(self, *args, user, channel=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.channel = channel
        self.fields["client"].queryset = scoped(Client.objects.order_by("name"), user)
        self.fields["contacts"].queryset = scoped(
            Contact.objects.exclude(email="").select_related("client")
            .order_by("client__name", "name"), user)
        if channel is not None:
            self.fields["client"].disabled = True

    def clean_client(self):
        client = self.cleaned_data.get("client")
        if self.channel is None and not can_see_client(self.user,
                                                       client.pk if client else None):
            raise forms.ValidationError("Choose a client: only roles that see every client "
                                        "may create MSP-wide channels.")
        return client

    def clean_recipients(self):
        addresses = [a for a in re.split(r"[\s,;]+", self.cleaned_data["recipients"]) if a]
        bad = []
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                bad.append(address)
        if bad:
            raise forms.ValidationError(f"Not an email address: {', '.join(bad)}")
        return addresses

    def action_fields(self) -> dict:
        """What the channel actions take, from the cleaned form."""
        data = dict(self.cleaned_data)
        data.pop("catch_up", None)
        if self.channel is not None:
            data.pop("client", None)
        return data


def scope_from(params, channel=None, user=None) -> dict | None:
    """The scope a form's current values give (for the catch-up count), or None when the
    client named is not one the user may choose."""
    kinds = [k for k in params.getlist("event_kinds") if k in subscribable()]
    severity = params.get("min_severity") or State.WARNING
    if channel is not None:
        client_id = channel.client_id
    else:
        raw = params.get("client") or ""
        client_id = parse_id(raw)
        if not can_see_client(user, client_id):
            return None
    return {"client_id": client_id, "min_severity": severity,
            "event_kinds": kinds,
            "is_active": bool(params.get("is_active"))}
