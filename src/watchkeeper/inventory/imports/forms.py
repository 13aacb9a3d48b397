"""Form of the page."""

from __future__ import annotations

from django import forms

from watchkeeper.core.models import Client
from watchkeeper.core.tenancy import scoped


class ImportUploadForm(forms.Form):
    client = forms.ModelChoiceField(queryset=Client.objects.none())
    file = forms.FileField(help_text="CSV or XLSX; the first row holds the column names.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = scoped(Client.objects.filter(is_active=True), user)
