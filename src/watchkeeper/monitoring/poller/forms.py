"""Forms of the network-check and heartbeat pages; choice lists are scoped to the user."""

from __future__ import annotations

import json

from django import forms

from watchkeeper.core.tenancy import can_see_client, scoped
from watchkeeper.inventory.selectors import all_devices

from ..models import Policy
from . import engine as poller
from .checks import LABELS, ConfigError

EXAMPLES = {
    "ping": '{"host": "10.0.0.1", "count": 3, "loss_warning": 20, "latency_warning": 100}',
    "tcp": '{"host": "mail.example.com", "port": 25, "banner": "ESMTP"}',
    "http": '{"url": "https://portal.example.com/login", "keyword": "Sign in", '
            '"redirects": "same_host", "latency_warning": 1500}',
    "tls": '{"host": "portal.example.com", "port": 443, "days_warning": 21, '
           '"days_critical": 7}',
    "dns": '{"name": "example.com", "rtype": "MX", "expected": ["10 mail.example.com"]}',
    "snmp": '{"host": "10.0.0.2", "version": "2c", "community": "public", '
            '"mode": "interface", "if_index": 3}',
}


class NetworkCheckForm(forms.Form):
    policy = forms.ModelChoiceField(queryset=Policy.objects.none())
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=sorted(LABELS.items()))
    device = forms.ModelChoiceField(
        queryset=all_devices().none(), required=False,
        help_text="Optional: the device this check watches; its primary IP is the target "
                  "when the configuration names none.")
    config = forms.CharField(
        label="Configuration (JSON)",
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "spellcheck": "false"}),
        help_text="Examples — " + "; ".join(f"{k}: {v}" for k, v in EXAMPLES.items()))
    interval_seconds = forms.IntegerField(min_value=10, max_value=86400, initial=60,
                                          label="Interval (seconds)")
    fail_after = forms.IntegerField(min_value=1, max_value=20, initial=2,
                                    label="Alert after this many failures in a row")
    recover_after = forms.IntegerField(min_value=1, max_value=20, initial=1,
                                       label="Recover after this many successes in a row")
    is_enabled = forms.BooleanField(required=False, initial=True, label="Enabled")

    def __init__(self, *args, user, instance=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.instance = user, instance
        policies = scoped(Policy.objects.select_related("client"), user)
        if not can_see_client(user, None):
            policies = policies.filter(client__isnull=False)
        self.fields["policy"].queryset = policies
        self.fields["policy"].label_from_instance = (
            lambda p: f"{p.client.name if p.client_id else 'All clients'} › {p.name}")
        self.fields["device"].queryset = scoped(all_devices().select_related("client"), user)
        self.fields["device"].label_from_instance = lambda d: f"{d.client.name} › {d.name}"
        if instance is not None:
            del self.fields["policy"]
            self.fields["kind"].disabled = True

    def clean_config(self):
        try:
            value = json.loads(self.cleaned_data["config"] or "{}")
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("A JSON object, e.g. {\"host\": \"10.0.0.1\"}.")
        return value

    def clean(self):
        data = super().clean()
        kind = data.get("kind") or (self.instance.kind if self.instance else None)
        config = data.get("config")
        if kind and isinstance(config, dict):
            if self.instance is not None:
                # A stored secret is kept only while the target is unchanged.
                config = poller.keep_secrets(
                    kind, config, self.instance.kind, self.instance.config or {},
                    same_device=getattr(data.get("device"), "pk", None)
                    == self.instance.device_id)
            try:
                poller.validate_for_storage(kind, config)
            except ConfigError as exc:
                self.add_error("config", str(exc))
                return data
            if not data.get("device") and not any(config.get(k) for k in (
                    "host", "url", "name", "target")):
                self.add_error("config", "Name a target (host, url or name) or choose a "
                                         "device.")
            data["config"] = config
        device, policy = data.get("device"), data.get("policy")
        if device and policy and policy.client_id and device.client_id != policy.client_id:
            self.add_error("device", "The device belongs to another client than the policy.")
        return data
