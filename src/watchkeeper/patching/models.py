"""Patch state: the source of truth for which updates each device is missing.

`DeviceUpdate` is one available update on one device as its agent last reported it (set-based:
a report replaces the device's rows; an update that disappears was installed or withdrawn).
`DevicePatchState` is the per-device summary the compliance pages and API read, kept in step
by `services.apply_agent_updates` in the check-in's transaction.
"""

from __future__ import annotations

from django.db import models

from watchkeeper.core.models import Client

from .choices import Classification, UpdateSource


class DeviceUpdate(models.Model):
    tenant_path = "client"

    device = models.ForeignKey("inventory.Device", on_delete=models.CASCADE, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    arch = models.CharField(max_length=50, blank=True)
    installed_version = models.CharField(max_length=200, blank=True)
    version = models.CharField("candidate version", max_length=200, blank=True)
    classification = models.CharField(max_length=10, choices=Classification.choices,
                                      default=Classification.OTHER)
    source = models.CharField(max_length=12, choices=UpdateSource.choices,
                              default=UpdateSource.OS)
    origin = models.CharField(max_length=200, blank=True)
    archive = models.CharField(max_length=200, blank=True)
    site = models.CharField(max_length=255, blank=True)
    severity = models.CharField(max_length=40, default="unknown")
    references = models.JSONField(default=list, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    reboot = models.BooleanField(default=False)
    release_date = models.DateField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "name", "arch"],
                                               name="patching_update_device_name_arch")]
        indexes = [models.Index(fields=["client", "classification"]),
                   models.Index(fields=["name"])]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} {self.installed_version} → {self.version}"


class DevicePatchState(models.Model):
    tenant_path = "client"

    device = models.OneToOneField("inventory.Device", on_delete=models.CASCADE,
                                  primary_key=True, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    reported_at = models.DateTimeField(null=True, blank=True)
    available = models.PositiveIntegerField(default=0)
    security = models.PositiveIntegerField(default=0)
    oldest_security_at = models.DateTimeField(null=True, blank=True)
    reboot_pending = models.BooleanField(default=False)
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["client", "security"])]

    def __str__(self) -> str:
        return f"patch state of device {self.device_id}"
