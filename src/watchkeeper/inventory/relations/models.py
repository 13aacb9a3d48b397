"""Table of device relations: what a device — or, with no device, a whole site — depends
on (its gateway, its upstream switch, the host of a VM, a device it needs, what powers it),
with where each relation comes from. Imported by inventory/models.py, so it belongs to the
inventory app. Monitoring's dependency suppression reads it through relations/selectors.py.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from watchkeeper.core.models import Client, Site

from .choices import RelationKind, RelationSource


class DeviceRelation(models.Model):
    """`parent` is what `device` (or every device of `site`) depends on. One row per source:
    the same relation seen by the agent and typed by hand is two rows that agree; two
    sources naming different parents for one device are a conflict shown on the device's
    page (relations/selectors.py), never overwritten."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=RelationKind.choices)
    parent = models.ForeignKey("inventory.Device", on_delete=models.CASCADE,
                               related_name="+")
    device = models.ForeignKey("inventory.Device", on_delete=models.CASCADE, null=True,
                               blank=True, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="+")
    source = models.CharField(max_length=10, choices=RelationSource.choices,
                              default=RelationSource.MANUAL)
    # What the source saw: "default gateway 10.0.0.1", "LLDP neighbour on Gi0/3".
    detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=now)
    # Last time an observing source confirmed it (null for manual relations).
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "parent", "device", "site", "source"],
                                    name="devicerelation_unique"),
            models.CheckConstraint(condition=Q(device__isnull=False) | Q(site__isnull=False),
                                   name="relation_has_child"),
        ]

    def __str__(self) -> str:
        child = f"device {self.device_id}" if self.device_id else f"site {self.site_id}"
        return f"{child} {self.kind} {self.parent_id} ({self.source})"
