"""Tables of the script library: scripts, their immutable versions, and runs (one run per
request, on one agent or a group of them). Imported by agents/models.py, so they belong to
the agents app."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from watchkeeper.core.models import Client

from ..choices import RunStatus, ScriptLanguage, TargetKind


class Script(models.Model):
    """A script of the MSP-wide library. Its body lives in versions; runs pin a version."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def current(self) -> ScriptVersion | None:
        return self.versions.order_by("-version").first()


class ScriptVersion(models.Model):
    """One immutable version of a script: language, body template and parameter schema.
    The body may use $variables from an allowlist (see templating.py); parameters are
    passed to the script as arguments, never pasted into it."""

    script = models.ForeignKey(Script, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    language = models.CharField(max_length=12, choices=ScriptLanguage.choices)
    body = models.TextField()
    # [{"name": "path", "required": true, "default": ""}], in argv order.
    parameters = models.JSONField(default=list, blank=True)
    timeout = models.PositiveIntegerField(default=300)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["script", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["script", "version"], name="scriptversion_unique")
        ]

    def __str__(self) -> str:
        return f"{self.script} v{self.version}"


class ScriptRun(models.Model):
    """A request to run a script version on a device, a site or a client: one Command per
    targeted agent. A run over the large-job threshold waits for a second person."""

    tenant_path = "client"

    script_version = models.ForeignKey(ScriptVersion, on_delete=models.PROTECT,
                                       related_name="runs")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    target_kind = models.CharField(max_length=10, choices=TargetKind.choices)
    target_id = models.BigIntegerField()
    target_label = models.CharField(max_length=255)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices,
                              default=RunStatus.RUNNING)
    needs_approval = models.BooleanField(default=False)
    agent_count = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=now, db_index=True)
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["client", "created_at"], name="scriptrun_client_idx")]

    def __str__(self) -> str:
        return f"{self.script_version} on {self.target_label}"
