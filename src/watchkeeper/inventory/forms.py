from __future__ import annotations

from django import forms

from watchkeeper.core.models import Client, Contact, Site
from watchkeeper.core.tenancy import scoped

from .models import Device, SoftwareLicence

DEVICE_FIELDS = ["client", "site", "name", "kind", "status", "hostname", "serial",
                 "asset_tag", "manufacturer", "model", "os_name", "os_version",
                 "purchase_date", "cost", "cost_currency", "warranty_end", "end_of_support",
                 "assigned_contact", "location", "notes"]


class DeviceForm(forms.ModelForm):
    class Meta:
        model = Device
        fields = DEVICE_FIELDS
        widgets = {
            "purchase_date": forms.DateInput(attrs={"type": "date"}),
            "warranty_end": forms.DateInput(attrs={"type": "date"}),
            "end_of_support": forms.DateInput(attrs={"type": "date"}),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = scoped(Client.objects.filter(is_active=True), user)
        self.fields["site"].queryset = scoped(Site.objects.select_related("client"), user)
        self.fields["assigned_contact"].queryset = scoped(
            Contact.objects.select_related("client"), user)
        if self.instance.pk:
            # Moving a device between tenants is not an edit; it would carry history across.
            self.fields["client"].disabled = True

    def clean(self):
        data = super().clean()
        client = data.get("client")
        for name in ("site", "assigned_contact"):
            obj = data.get(name)
            if obj is not None and client is not None and obj.client_id != client.pk:
                self.add_error(name, "Belongs to another client.")
        return data


class LicenceForm(forms.ModelForm):
    key = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                          help_text="Stored encrypted; leave empty to keep the current key.")

    class Meta:
        model = SoftwareLicence
        fields = ["client", "product", "match", "seats", "expires_at", "notes"]
        widgets = {"expires_at": forms.DateInput(attrs={"type": "date"}),
                   "notes": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = scoped(Client.objects.all(), user)
        self.fields["match"].required = False
        if self.instance.pk:
            self.fields["client"].disabled = True
