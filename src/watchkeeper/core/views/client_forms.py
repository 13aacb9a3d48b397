"""Forms of the client pages. They only validate and shape input; the actions write."""

from __future__ import annotations

import datetime

from django import forms
from django.core.exceptions import ValidationError

from .. import contact_rules
from ..models import TIMEZONE_CHOICES, Client, Site

WEEKDAYS = [(1, "Monday"), (2, "Tuesday"), (3, "Wednesday"), (4, "Thursday"), (5, "Friday"),
            (6, "Saturday"), (7, "Sunday")]

# The zones most MSP clients use first, then every IANA zone.
COMMON_ZONES = ["UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York",
                "America/Chicago", "America/Denver", "America/Los_Angeles", "Australia/Sydney"]


def timezone_choices(blank_label: str | None = None) -> list:
    choices: list = [("", blank_label)] if blank_label else []
    choices.append(("Common", [(z, z) for z in COMMON_ZONES]))
    choices.append(("All time zones", list(TIMEZONE_CHOICES)))
    return choices


def _time_input() -> forms.TimeInput:
    return forms.TimeInput(format="%H:%M", attrs={"type": "time"})


class ClientForm(forms.Form):
    """Name, zone, notes, active flag, and business hours: per weekday an open flag and up
    to two intervals (a split day, e.g. closed over lunch)."""

    name = forms.CharField(max_length=200)
    timezone = forms.ChoiceField(choices=timezone_choices(), initial="UTC", label="Time zone",
                                 help_text="Business hours and the client's local time use it.")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    is_active = forms.BooleanField(required=False, initial=True, label="Active",
                                   help_text="Inactive clients stay searchable but are "
                                             "marked inactive in lists.")

    def __init__(self, *args, networks_editable: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if networks_editable:
            # Owners and admins only (clients.manage): what the server may probe for them.
            self.fields["probe_networks"] = forms.CharField(
                required=False, label="Probe networks",
                widget=forms.Textarea(attrs={"rows": 2, "class": "mono",
                                             "spellcheck": "false"}),
                help_text="Networks the server's network checks and discovery may reach for "
                          "this client, one CIDR per line (10.1.0.0/16). Empty: none. "
                          "Loopback and link-local need a network of their own kind.")
        for day, label in WEEKDAYS:
            self.fields[f"d{day}_open"] = forms.BooleanField(required=False, label=f"{label} open")
            for part in ("start1", "end1", "start2", "end2"):
                self.fields[f"d{day}_{part}"] = forms.TimeField(
                    required=False, widget=_time_input(), label=f"{label} {part[:-1]} {part[-1]}")

    @property
    def main_fields(self):
        names = ["name", "timezone", "notes", "is_active"]
        if "probe_networks" in self.fields:
            names.append("probe_networks")
        return [self[name] for name in names]

    @property
    def hours_rows(self):
        return [{
            "day": day, "label": label, "open": self[f"d{day}_open"],
            "start1": self[f"d{day}_start1"], "end1": self[f"d{day}_end1"],
            "start2": self[f"d{day}_start2"], "end2": self[f"d{day}_end2"],
            "errors": self.errors.get(f"d{day}_open", []),
        } for day, label in WEEKDAYS]

    @classmethod
    def initial_for(cls, client: Client | None) -> dict:
        if client is None:
            from ..models import default_business_hours

            hours = default_business_hours()
            initial = {"timezone": "UTC", "is_active": True}
        else:
            hours = client.business_hours or {}
            initial = {"name": client.name, "timezone": client.timezone,
                       "notes": client.notes, "is_active": client.is_active,
                       "probe_networks": "\n".join(client.probe_networks or [])}
        for day, _label in WEEKDAYS:
            intervals = hours.get(str(day)) or []
            initial[f"d{day}_open"] = bool(intervals)
            for i, (start, end) in enumerate(intervals[:2], start=1):
                initial[f"d{day}_start{i}"] = start
                initial[f"d{day}_end{i}"] = end
        return initial

    def clean_probe_networks(self) -> list[str]:
        from ..netguard import normalize_networks

        try:
            return normalize_networks(self.cleaned_data.get("probe_networks", "").split())
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self):
        data = super().clean()
        hours: dict[str, list[list[str]]] = {}
        for day, label in WEEKDAYS:
            if not data.get(f"d{day}_open"):
                continue
            intervals: list[tuple[datetime.time, datetime.time]] = []
            for i in (1, 2):
                start, end = data.get(f"d{day}_start{i}"), data.get(f"d{day}_end{i}")
                if start is None and end is None:
                    continue
                if start is None or end is None:
                    self.add_error(f"d{day}_open", f"{label}: give both a start and an end time.")
                    break
                if start >= end:
                    self.add_error(f"d{day}_open", f"{label}: the end must be after the start.")
                    break
                intervals.append((start, end))
            else:
                if not intervals:
                    self.add_error(f"d{day}_open", f"{label}: open days need opening hours.")
                elif len(intervals) == 2 and intervals[1][0] < intervals[0][1]:
                    self.add_error(f"d{day}_open",
                                   f"{label}: the second interval must start after the first ends.")
                else:
                    hours[str(day)] = [[s.strftime("%H:%M"), e.strftime("%H:%M")]
                                       for s, e in intervals]
        data["business_hours"] = hours
        return data

    def values(self) -> dict:
        d = self.cleaned_data
        values = {"name": d["name"].strip(), "timezone": d["timezone"], "notes": d["notes"],
                  "is_active": d["is_active"], "business_hours": d["business_hours"]}
        if "probe_networks" in self.fields:
            values["probe_networks"] = d["probe_networks"]
        return values


class SiteForm(forms.Form):
    name = forms.CharField(max_length=200)
    address = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    timezone = forms.ChoiceField(required=False, choices=timezone_choices("Same as the client"),
                                 label="Time zone",
                                 help_text="Only when the site is in another zone than the client.")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    FIELDS = ("name", "address", "timezone", "notes")

    def values(self) -> dict:
        return {k: self.cleaned_data[k] for k in self.FIELDS}


class ContactForm(forms.Form):
    name = forms.CharField(max_length=200)
    title = forms.CharField(max_length=200, required=False, label="Job title")
    email = forms.EmailField(required=False)
    phone = forms.CharField(max_length=50, required=False,
                            widget=forms.TextInput(attrs={"type": "tel"}))
    site = forms.ModelChoiceField(queryset=Site.objects.none(), required=False,
                                  empty_label="No particular site")
    is_primary = forms.BooleanField(required=False, label="Primary contact",
                                    help_text="Receives notices and reports for the client.")
    is_user = forms.BooleanField(required=False, label="Counts as a user",
                                 help_text="Billed by per-user contracts.")

    FIELDS = ("name", "title", "email", "phone", "site", "is_primary", "is_user")

    def __init__(self, *args, sites=None, user=None, client=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites if sites is not None else Site.objects.none()
        self.user = user
        self.client = client

    def clean_email(self):
        email = self.cleaned_data.get("email", "")
        errors = contact_rules.check_email(self.user, self.client, email)
        if errors:
            raise forms.ValidationError(errors)
        return email

    def values(self) -> dict:
        return {k: self.cleaned_data[k] for k in self.FIELDS}


class ChooseClientForm(forms.Form):
    """First step of '+ New site/contact' from outside a client page."""

    client = forms.ModelChoiceField(queryset=Client.objects.none(), empty_label="Choose…")

    def __init__(self, *args, clients=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = clients


class DeleteForm(forms.Form):
    """Typed confirmation: the user types the name of what they delete."""

    confirm = forms.CharField(label="Type the name to confirm", max_length=200)

    def __init__(self, *args, expected: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_confirm(self):
        value = self.cleaned_data["confirm"].strip()
        if value != self.expected:
            raise ValidationError(f"Type “{self.expected}” exactly to confirm.")
        return value
