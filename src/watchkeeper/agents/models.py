"""Agents: enrollment tokens, enrolled agents and their request nonces, metric samples,
quarantined payloads, the command-signing public key, and the script library with its runs
and per-agent commands.

Hot rows stay narrow: a metric sample is (device, metric id, ts, value); inventory lives in
the inventory app's tables; bulky command output sits on the command row, never on Agent.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from watchkeeper.core.models import Client, Site

from .choices import (
    AgentStatus,
    Connectivity,
)


class EnrollmentToken(models.Model):
    """A short-lived secret that lets new agents enroll into one site of one client.
    Only its SHA-256 is stored; the prefix finds the row."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    auto_approve = models.BooleanField(default=False)
    max_uses = models.PositiveIntegerField(null=True, blank=True,
                                           help_text="Empty: any number until it expires.")
    uses = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["client", "created_at"], name="enrolltoken_client_idx")]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.site})"

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now():
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used up"
        return "active"

    @property
    def is_usable(self) -> bool:
        return self.state == "active"


class Agent(models.Model):
    """One enrolled endpoint agent. Its identity is its Ed25519 public key, never its
    hostname: a reinstalled or renamed machine enrolls as a new agent with no old access."""

    tenant_path = "client"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, null=True, blank=True,
                             related_name="+")
    device = models.OneToOneField("inventory.Device", on_delete=models.PROTECT, null=True,
                                  blank=True, related_name="agent")
    public_key = models.CharField(max_length=64, unique=True)  # base64 raw Ed25519
    hostname = models.CharField(max_length=255, blank=True)  # as reported at enrollment
    facts = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=AgentStatus.choices,
                              default=AgentStatus.PENDING)
    connectivity = models.CharField(max_length=10, choices=Connectivity.choices,
                                    default=Connectivity.UNKNOWN)
    enrollment_token = models.ForeignKey(EnrollmentToken, on_delete=models.SET_NULL,
                                         null=True, blank=True, related_name="agents")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # When the next check-in is due; the offline sweep finds agents past it with one
    # indexed query and claims each transition with a conditional UPDATE.
    next_due_at = models.DateTimeField(null=True, blank=True)
    last_seq = models.BigIntegerField(default=0)
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    agent_version = models.CharField(max_length=40, blank=True)
    # Per-section SHA-256 of the inventory the server holds (what the agent diffs against).
    inventory_hashes = models.JSONField(default=dict, blank=True)
    # Running totals of batches the agent's spool dropped, as the agent reported them.
    spool_dropped = models.JSONField(default=dict, blank=True)
    # Set by the signer when it signs a command for this agent (and `commands_version`
    # bumped), cleared by a check-in that found nothing to hand out, if the version is
    # still the one it read: most check-ins then skip the command query altogether.
    commands_waiting = models.BooleanField(default=False)
    commands_version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["hostname", "id"]
        indexes = [
            models.Index(fields=["status", "connectivity", "next_due_at"],
                         name="agent_due_idx"),
            models.Index(fields=["client", "status"], name="agent_client_status_idx"),
        ]

    def __str__(self) -> str:
        return self.hostname or str(self.uid)

    @property
    def fingerprint(self) -> str:
        import base64
        import hashlib

        return hashlib.sha256(base64.b64decode(self.public_key)).hexdigest()[:16]


class AgentNonce(models.Model):
    """A request nonce already used by an agent; the unique constraint refuses replays."""

    tenant_path = "agent__client"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=64)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "nonce"], name="agentnonce_unique")
        ]


class MetricName(models.Model):
    """A metric's name ("cpu.percent", "disk.used_bytes:/"), so samples store a small id."""

    name = models.CharField(max_length=200, unique=True)

    def __str__(self) -> str:
        return self.name


class MetricSample(models.Model):
    """One value of one metric of one device at one time. No FK constraint to the device so
    a bulk insert costs no lookups and pruning is a plain range delete."""

    tenant_path = "device__client"

    device = models.ForeignKey("inventory.Device", on_delete=models.DO_NOTHING,
                               db_constraint=False, related_name="+")
    metric = models.ForeignKey(MetricName, on_delete=models.DO_NOTHING, db_constraint=False,
                               related_name="+")
    ts = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        indexes = [
            models.Index(fields=["device", "metric", "ts"], name="metric_series_idx"),
            models.Index(fields=["ts"], name="metric_ts_idx"),
        ]


class QuarantinedPayload(models.Model):
    """An agent request the server refused as malformed, kept for an admin to inspect."""

    tenant_path = "agent__client"

    agent = models.ForeignKey(Agent, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    received_at = models.DateTimeField(default=now, db_index=True)
    path = models.CharField(max_length=200)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    reason = models.TextField()
    body = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]


from .scripts.models import Script, ScriptRun, ScriptVersion  # noqa: E402,F401,I001  (scripts)
from .commands.models import Command, SignerKey  # noqa: E402,F401,I001  (commands)
