"""Tables of agent commands: the command-signing public key and each signed command sent to
one agent (bulky output on the command row, never on Agent). Imported by agents/models.py,
so they belong to the agents app."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.timezone import now

from ..choices import CommandStatus, ScriptLanguage


class SignerKey(models.Model):
    """The public half of the command-signing key. The private half lives only in the
    signer's key file, which the web process never reads."""

    public_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=now)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.public_key[:12]

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the raw public key in hex: `enroll --signer-fingerprint` checks it."""
        import base64
        import hashlib

        return hashlib.sha256(base64.b64decode(self.public_key)).hexdigest()


class Command(models.Model):
    """One script execution addressed to one agent. The web tier creates it unsigned; the
    signer process fills `payload` + `signature`; the agent verifies both before running."""

    tenant_path = "agent__client"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE,
                              related_name="commands")
    run = models.ForeignKey("agents.ScriptRun", on_delete=models.CASCADE, null=True, blank=True,
                            related_name="commands")
    nonce = models.CharField(max_length=64, unique=True)
    language = models.CharField(max_length=12, choices=ScriptLanguage.choices)
    body = models.TextField()
    args = models.JSONField(default=list, blank=True)
    timeout = models.PositiveIntegerField(default=300)
    output_cap = models.PositiveIntegerField(default=65536)
    status = models.CharField(max_length=20, choices=CommandStatus.choices,
                              default=CommandStatus.QUEUED)
    created_at = models.DateTimeField(default=now)
    expires_at = models.DateTimeField()
    payload = models.TextField(blank=True)  # the exact signed JSON text
    signature = models.TextField(blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    truncated = models.BooleanField(default=False)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["agent", "status"], name="command_agent_status_idx"),
            models.Index(fields=["status", "created_at"], name="command_status_idx"),
        ]

    def __str__(self) -> str:
        return f"command {self.uid}"

    @property
    def output_length(self) -> int:
        """Characters of output (stdout and stderr) the agent reported."""
        return len(self.stdout or "") + len(self.stderr or "")
