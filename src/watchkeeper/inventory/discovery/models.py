"""Tables of network discovery: a run over a range and the hosts it found, proposed for
inventory. Imported by inventory/models.py, so they belong to the inventory app."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from watchkeeper.core.models import Client, Site

from ..choices import (
    ProposalState,
    RunStatus,
)


class DiscoveryRun(models.Model):
    """A network discovery sweep of one subnet on behalf of a client."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="discoveries")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, null=True, blank=True,
                             related_name="+")
    subnet = models.CharField(max_length=50)
    ports = models.JSONField(default=list)
    snmp_community_enc = models.TextField(blank=True)
    snmp_port = models.PositiveIntegerField(default=161)
    status = models.CharField(max_length=10, choices=RunStatus.choices,
                              default=RunStatus.QUEUED)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, related_name="+")
    created_at = models.DateTimeField(default=now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.subnet


class DiscoveredHost(models.Model):
    """A host a discovery run found, proposed for inventory."""

    tenant_path = "run__client"

    run = models.ForeignKey("inventory.DiscoveryRun", on_delete=models.CASCADE,
                            related_name="hosts")
    address = models.GenericIPAddressField()
    alive = models.BooleanField(default=False)
    open_ports = models.JSONField(default=list)
    snmp_name = models.CharField(max_length=255, blank=True)
    snmp_descr = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=ProposalState.choices,
                             default=ProposalState.PROPOSED)
    device = models.ForeignKey("inventory.Device", on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+")

    class Meta:
        ordering = ["address"]
        constraints = [
            models.UniqueConstraint(fields=["run", "address"], name="discovered_unique")
        ]
