"""Form of the page."""

from __future__ import annotations

from django import forms

from watchkeeper.core.models import Client, Site
from watchkeeper.core.tenancy import scoped


class DiscoveryForm(forms.Form):
    client = forms.ModelChoiceField(queryset=Client.objects.none())
    site = forms.ModelChoiceField(queryset=Site.objects.none(), required=False)
    subnet = forms.CharField(max_length=50, help_text="e.g. 192.168.1.0/24 (at most /22)")
    ports = forms.CharField(required=False, max_length=500,
                            help_text="Comma-separated TCP ports; empty: common ports.")
    snmp_community = forms.CharField(required=False, max_length=100,
                                     widget=forms.PasswordInput(render_value=False),
                                     help_text="SNMP v2c community; empty: no SNMP.")
    snmp_port = forms.IntegerField(min_value=1, max_value=65535, initial=161)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = scoped(Client.objects.filter(is_active=True), user)
        self.fields["site"].queryset = scoped(Site.objects.all(), user)
