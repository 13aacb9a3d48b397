"""Inventory tables.

`Device` is the hot row: a list of 10,000 devices reads only these narrow columns. What an
agent reports in bulk lives in child tables:

- `DeviceSection` keeps each inventory section (system, disks, services, users, ...) whole,
  as the agent sent it, with its hash. Sections are replaced whole by the agent protocol and
  are shown per device, so one JSON row per section is the cheapest shape to write.
- `SoftwareInstall` and `NetworkAddress` are query tables: software is counted against
  licences and searched across the fleet, IPs and MACs are searched globally and used to
  find duplicates, so they get real indexed rows.

Every fact's origin is a `FieldProvenance` row; what changed over time is a `DeviceChange`
row; a disagreement between sources that a person must decide is a `FieldConflict`.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.timezone import now

from watchkeeper.core.models import Client, Contact, Site

from .choices import (
    ChangeKind,
    ConflictStatus,
    DeviceKind,
    LifecycleStatus,
    SourceKind,
)


class Device(models.Model):
    """One asset of a client: a machine, a network device, a printer."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="devices")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, null=True, blank=True,
                             related_name="devices")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=DeviceKind.choices,
                            default=DeviceKind.OTHER)
    status = models.CharField(max_length=20, choices=LifecycleStatus.choices,
                              default=LifecycleStatus.DEPLOYED)
    hostname = models.CharField(max_length=255, blank=True)
    serial = models.CharField(max_length=200, blank=True)
    # The MSP's or client's own label on the device; unique per client when set.
    asset_tag = models.CharField(max_length=100, blank=True)
    manufacturer = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True)
    os_name = models.CharField(max_length=200, blank=True)
    os_version = models.CharField(max_length=200, blank=True)
    primary_ip = models.GenericIPAddressField(null=True, blank=True)
    primary_mac = models.CharField(max_length=17, blank=True)
    reboot_required = models.BooleanField(null=True, blank=True)
    pending_updates = models.PositiveIntegerField(null=True, blank=True)
    # Lifecycle
    purchase_date = models.DateField(null=True, blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    cost_currency = models.CharField(  # ISO 4217; "" = not given
        max_length=3, blank=True,
        validators=[RegexValidator(r"^[A-Z]{3}$", "A three-letter ISO 4217 code, e.g. EUR.")])
    warranty_end = models.DateField(null=True, blank=True)
    end_of_support = models.DateField(null=True, blank=True)
    assigned_contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True,
                                         blank=True, related_name="devices")
    location = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    # Where the record came from, and the agent that reports for it (empty: none).
    source = models.CharField(max_length=20, choices=SourceKind.choices,
                              default=SourceKind.MANUAL)
    agent_ref = models.CharField(max_length=64, blank=True)
    # Last time any source observed the device (agent inventory, scan); indexed for the
    # "not seen for N days" reconciliation sweep.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    inventory_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["client", "name"], name="device_client_name_idx"),
            models.Index(fields=["name", "id"], name="device_name_idx"),
            models.Index(fields=["serial"], name="device_serial_idx"),
            models.Index(fields=["hostname"], name="device_hostname_idx"),
            models.Index(fields=["primary_mac"], name="device_mac_idx"),
            models.Index(fields=["primary_ip"], name="device_ip_idx"),
            models.Index(fields=["last_seen_at"], name="device_last_seen_idx"),
            models.Index(fields=["kind", "status"], name="device_kind_status_idx"),
            models.Index(fields=["agent_ref"], name="device_agent_ref_idx"),
            models.Index(fields=["asset_tag"], name="device_asset_tag_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["client", "asset_tag"],
                                    condition=~models.Q(asset_tag=""),
                                    name="device_asset_tag_per_client",
                                    violation_error_message="Another device of this client "
                                                            "has this asset tag."),
        ]

    def __str__(self) -> str:
        return self.name


class DeviceSection(models.Model):
    """One inventory section of a device as last reported, with its hash (delta protocol)."""

    tenant_path = "device__client"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="sections")
    section = models.CharField(max_length=40)
    hash = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict)
    source_ref = models.CharField(max_length=100, blank=True)
    observed_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "section"], name="devsection_unique")
        ]


class SoftwareInstall(models.Model):
    """A package installed on a device (query table: licences count these, search finds them)."""

    tenant_path = "device__client"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="software")
    name = models.CharField(max_length=255)
    version = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=50, blank=True)
    first_seen_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["device", "name", "source"],
                                    name="software_unique_per_device")
        ]
        indexes = [models.Index(fields=["name"], name="software_name_idx")]


class NetworkAddress(models.Model):
    """An interface address (IP and/or MAC) of a device; searched globally, used for
    duplicate detection. A MAC with no IP is one row with `address` empty."""

    tenant_path = "device__client"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="addresses")
    interface = models.CharField(max_length=100, blank=True)
    mac = models.CharField(max_length=17, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["interface", "address"]
        indexes = [
            models.Index(fields=["mac"], name="netaddr_mac_idx"),
            models.Index(fields=["address"], name="netaddr_ip_idx"),
        ]


class FieldProvenance(models.Model):
    """The latest value one source gave for one field of a device, and when."""

    tenant_path = "device__client"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="provenance")
    field = models.CharField(max_length=60)
    source_kind = models.CharField(max_length=20, choices=SourceKind.choices)
    source_ref = models.CharField(max_length=120, blank=True)
    value = models.TextField(blank=True)
    observed_at = models.DateTimeField(default=now)
    who = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                            blank=True, related_name="+")

    class Meta:
        ordering = ["field", "-observed_at"]
        constraints = [
            models.UniqueConstraint(fields=["device", "field", "source_kind", "source_ref"],
                                    name="provenance_unique_source")
        ]


class DeviceChange(models.Model):
    """One entry of a device's history timeline."""

    tenant_path = "device__client"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=30, choices=ChangeKind.choices)
    subject = models.CharField(max_length=255, blank=True)
    before = models.TextField(blank=True)
    after = models.TextField(blank=True)
    source_kind = models.CharField(max_length=20, choices=SourceKind.choices)
    source_ref = models.CharField(max_length=120, blank=True)
    at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["device", "at"], name="devchange_device_at_idx")]


class FieldConflict(models.Model):
    """A value a source proposed that disagrees with the device's value from another source;
    kept for a person to decide rather than overwritten."""

    tenant_path = "device__client"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="conflicts")
    field = models.CharField(max_length=60)
    current_value = models.TextField(blank=True)
    current_source = models.CharField(max_length=20, choices=SourceKind.choices)
    proposed_value = models.TextField(blank=True)
    proposed_source = models.CharField(max_length=20, choices=SourceKind.choices)
    proposed_ref = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=10, choices=ConflictStatus.choices,
                              default=ConflictStatus.OPEN)
    created_at = models.DateTimeField(default=now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "device"], name="conflict_status_idx")]

    def __str__(self) -> str:
        return f"{self.field}: {self.current_value!r} vs {self.proposed_value!r}"


class SoftwareLicence(models.Model):
    """A software licence of a client: seats, counted against matching installs."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="licences")
    product = models.CharField(max_length=200)
    match = models.CharField(max_length=200,
                             help_text="Installs whose software name contains this text "
                                       "use a seat.")
    seats = models.PositiveIntegerField(default=1)
    key_enc = models.TextField(blank=True)
    expires_at = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["client__name", "product"]

    def __str__(self) -> str:
        return self.product


class SavedView(models.Model):
    """A named device-list query string, personal or shared with the team."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="saved_device_views")
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=2000, blank=True)
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


from .imports.models import ImportRun  # noqa: E402,F401,I001  (imports)
from .discovery.models import DiscoveredHost, DiscoveryRun  # noqa: E402,F401,I001  (discovery)

from .relations.models import DeviceRelation  # noqa: E402,F401,I001  (relations)
