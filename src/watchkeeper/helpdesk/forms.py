"""Forms of the helpdesk pages (validation only; writes go through actions)."""

from __future__ import annotations

from django import forms

from watchkeeper.core.models import Client, Contact
from watchkeeper.core.tenancy import scoped

from .choices import Level, Priority, Status, TicketType
from .models import Queue


class ContactSelect(forms.Select):
    """Contacts with their client on each option (data-client), so the page can offer only
    the chosen client's contacts (contact_filter.js)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-client"] = str(instance.client_id)
        return option


class TicketForm(forms.Form):
    """A technician logging a call (or creating a ticket by hand)."""

    client = forms.ModelChoiceField(queryset=Client.objects.none())
    contact = forms.ModelChoiceField(
        queryset=Contact.objects.none(), required=False,
        widget=ContactSelect(attrs={"data-filter-by": "id_client"}),
        help_text="The chosen client's contacts.")
    subject = forms.CharField(max_length=300)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False)
    type = forms.ChoiceField(choices=TicketType.choices, initial=TicketType.INCIDENT)
    impact = forms.ChoiceField(choices=Level.choices, initial=Level.MEDIUM)
    urgency = forms.ChoiceField(choices=Level.choices, initial=Level.MEDIUM)
    queue = forms.ModelChoiceField(queryset=Queue.objects.all(), required=False)
    source = forms.ChoiceField(choices=[("phone", "Phone / logged call"), ("api", "Other")],
                               initial="phone")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = scoped(Client.objects.filter(is_active=True), user)
        contacts = scoped(Contact.objects.select_related("client").order_by("name"), user)
        chosen = self.data.get("client") or self.initial.get("client")
        if chosen and str(chosen).isdigit():
            contacts = contacts.filter(client_id=int(chosen))
        self.fields["contact"].queryset = contacts
        self.fields["contact"].label_from_instance = lambda c: f"{c.name} ({c.client.name})"

    def clean(self):
        data = super().clean()
        contact, client = data.get("contact"), data.get("client")
        if contact and client and contact.client_id != client.pk:
            self.add_error("contact", "This contact belongs to another client.")
        return data


class PortalTicketForm(forms.Form):
    subject = forms.CharField(max_length=300)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}),
                                  label="What happened?")
    urgency = forms.ChoiceField(choices=Level.choices, initial=Level.MEDIUM,
                                label="How urgent is it for you?")
    attachment = forms.FileField(required=False, label="Attach a file",
                                 help_text="A screenshot or a log helps (optional).")

    def clean_attachment(self):
        from django.conf import settings

        upload = self.cleaned_data.get("attachment")
        limit = settings.ATTACHMENT_MAX_BYTES
        if upload is not None and upload.size > limit:
            raise forms.ValidationError(f"The file is larger than the {limit // 2**20} MB "
                                        "limit.")
        return upload


class SurveyForm(forms.Form):
    score = forms.TypedChoiceField(choices=[(i, str(i)) for i in range(5, 0, -1)],
                                   coerce=int, widget=forms.RadioSelect,
                                   label="How satisfied are you with how we handled it?")
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)


STATUS_CHOICES = [("", "—")] + list(Status.choices)
PRIORITY_CHOICES = [("", "—")] + list(Priority.choices)
