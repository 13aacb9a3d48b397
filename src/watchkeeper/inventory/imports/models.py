"""Table of imports: one run of a CSV/XLSX import with its mapping, preview and result.
Imported by inventory/models.py, so it belongs to the inventory app."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from watchkeeper.core.models import Client

from ..choices import (
    ImportStatus,
)


class ImportRun(models.Model):
    """One spreadsheet import: the parsed rows, the column mapping, and the report."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="imports")
    filename = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=ImportStatus.choices,
                              default=ImportStatus.UPLOADED)
    headers = models.JSONField(default=list)
    rows = models.JSONField(default=list)
    mapping = models.JSONField(default=dict, blank=True)
    # A person's reading of ambiguous slash dates for every date column ("dmy"/"mdy"),
    # "" = undecided (a column's own unambiguous values decide first).
    date_order = models.CharField(max_length=3, default="", blank=True)
    # A person's decisions from the preview: "order:<field>" -> dmy|mdy, "mark:cost" -> ,|.,
    # "value:<line>:<field>" -> the chosen reading or "" (leave empty),
    # "dup:<group>" -> the line that wins, or "skip".
    resolutions = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, related_name="+")
    created_at = models.DateTimeField(default=now)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.filename
