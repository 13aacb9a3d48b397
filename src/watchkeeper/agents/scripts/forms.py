"""Forms of the script pages; every choice list is scoped to what the user may see."""

from __future__ import annotations

import json

from django import forms

from watchkeeper.core.models import Client, Site
from watchkeeper.core.tenancy import scoped

from ..choices import AgentStatus, ScriptLanguage, TargetKind
from ..models import Agent


class ScriptForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    language = forms.ChoiceField(choices=ScriptLanguage.choices)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 14, "class": "mono",
                                                        "spellcheck": "false"}),
                           strip=False,
                           help_text="Placeholders: {{ hostname }}, {{ device_name }}, "
                                     "{{ client_name }}, {{ site_name }}, {{ agent_id }}. "
                                     "Parameters arrive as arguments ($1, $2… / sys.argv).")
    parameters = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text='JSON list, in argument order: [{"name": "path", "required": true}]; '
                  '"secret": true stores the value encrypted and shows it masked.')
    timeout = forms.IntegerField(min_value=1, max_value=3600, initial=300,
                                 label="Timeout (seconds)")

    def clean_parameters(self):
        raw = self.cleaned_data["parameters"].strip()
        if not raw:
            return []
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError("Not valid JSON.") from exc
        if not isinstance(value, list):
            raise forms.ValidationError("A JSON list is expected.")
        return value


class RunForm(forms.Form):
    target_kind = forms.ChoiceField(choices=TargetKind.choices, label="Run on")
    device = forms.ModelChoiceField(queryset=Agent.objects.none(), required=False,
                                    label="Device", to_field_name="device_id")
    site = forms.ModelChoiceField(queryset=Site.objects.none(), required=False)
    client = forms.ModelChoiceField(queryset=Client.objects.none(), required=False)
    # The version the requester reviewed on the page; the run is refused if it changed.
    script_version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, user, parameters: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["device"].queryset = scoped(
            Agent.objects.filter(status=AgentStatus.APPROVED).select_related(
                "device", "client"), user).order_by("client__name", "hostname")
        self.fields["device"].label_from_instance = (
            lambda a: f"{a.client.name} › {a.device.name if a.device else a.hostname}")
        self.fields["site"].queryset = scoped(Site.objects.select_related("client"), user)
        self.fields["site"].label_from_instance = lambda s: f"{s.client.name} › {s.name}"
        self.fields["client"].queryset = scoped(Client.objects.all(), user)
        self.parameter_names = []
        for spec in parameters:
            name = f"param_{spec['name']}"
            self.parameter_names.append((spec["name"], name))
            self.fields[name] = forms.CharField(
                label=spec["name"], required=spec.get("required", False),
                initial=spec.get("default", ""), help_text=spec.get("description", ""),
                widget=(forms.PasswordInput(attrs={"autocomplete": "off"})
                        if spec.get("secret") else forms.TextInput))

    def clean(self):
        data = super().clean()
        kind = data.get("target_kind")
        if kind and not data.get(kind):
            self.add_error(kind, "Choose a target.")
        return data

    def target(self):
        kind = self.cleaned_data["target_kind"]
        chosen = self.cleaned_data[kind]
        return chosen.device if kind == TargetKind.DEVICE else chosen

    def parameters(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(field, "") for name, field in self.parameter_names}
