"""Forms of the agents pages; every choice list is scoped to what the user may see."""

from __future__ import annotations

from django import forms
from django.conf import settings

from watchkeeper.core.models import Site
from watchkeeper.core.tenancy import scoped


class TokenForm(forms.Form):
    site = forms.ModelChoiceField(queryset=Site.objects.none(),
                                  help_text="Agents enrolled with this token join this site.")
    hours = forms.FloatField(min_value=0.05, max_value=720, initial=None, required=False,
                             label="Valid for (hours)")
    auto_approve = forms.BooleanField(required=False, label="Approve agents automatically",
                                      help_text="Otherwise each new agent waits for approval.")
    max_uses = forms.IntegerField(min_value=1, required=False, label="Maximum uses",
                                  help_text="Empty: any number of agents until it expires.")
    note = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = scoped(Site.objects.select_related("client"), user)
        self.fields["site"].label_from_instance = lambda s: f"{s.client.name} › {s.name}"
        self.fields["hours"].help_text = f"Default {settings.ENROLLMENT_TOKEN_HOURS} h."
