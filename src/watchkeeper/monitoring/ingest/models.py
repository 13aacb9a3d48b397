"""An ingestion source: one sender (an Alertmanager, a Zabbix server) with its own token,
bound to one client. Only the token's SHA-256 is stored."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from watchkeeper.core.models import Client


class IngestSource(models.Model):
    """Alerts posted with this source's token belong to its client and are judged by the
    policy of its check (kind "external"): ticket severities, escalation."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    check_template = models.ForeignKey("monitoring.Check", on_delete=models.PROTECT,
                                       related_name="+")
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["client", "name"],
                                               name="ingestsource_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
