"""The command signer: a separate process (`watchkeeper signer`) holding the only copy of the
command-signing private key.

The web tier creates Command rows (unsigned) and can never produce a signature, so a
compromised web process cannot command endpoints; it can at worst queue work the signer
then re-checks. The signer refuses to sign a command of a run above the large-job threshold
unless a second person (not the requester) approved it, recounting the run itself rather
than trusting the flag the web tier set.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db.models import Count, F
from django.utils import timezone

from watchkeeper.core import crypto
from watchkeeper.core.canonical import canonical_json

from ..actions import open_value, recent_agent_count
from ..choices import CommandStatus
from ..models import Agent, Command, ScriptRun
from ..protocol import b64e

log = logging.getLogger(__name__)


def load_or_create_key(path: str | os.PathLike | None = None) -> Ed25519PrivateKey:
    path = Path(path or settings.SIGNER_KEY_FILE)
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise PermissionError(f"{path} is readable by others (mode {mode:o}); chmod 600")
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another signer created it first: use theirs
        return load_or_create_key(path)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    log.info("created command-signing key %s", path)
    return key


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


PAYLOAD_PURPOSE = "agents.command-payload"


def seal_payload(text: str) -> str:
    """The signed payload as stored: it can hold secret script parameters in clear, so the
    column keeps it encrypted (the signature covers the plain text, which the agent gets)."""
    return crypto.encrypt(text, PAYLOAD_PURPOSE)


def open_payload(stored: str) -> str:
    """The exact signed text of a stored payload. Plain JSON is read as it is (rows written
    before payloads were sealed are sealed by migration agents 0003; tests forge such rows)."""
    if not stored or stored.lstrip().startswith("{"):
        return stored
    return crypto.decrypt(stored, PAYLOAD_PURPOSE)


def command_payload(command: Command) -> str:
    """The exact text the agent verifies; the agent re-checks every field in it."""
    return canonical_json({
        "v": 1,
        "id": str(command.uid),
        "agent": str(command.agent.uid),
        "nonce": command.nonce,
        "issued_at": int(time.time()),
        "expires_at": int(command.expires_at.timestamp()),
        "language": command.language,
        "body": command.body,
        "args": [open_value(arg) for arg in command.args],
        "timeout": command.timeout,
        "output_cap": command.output_cap,
    }).decode()


def _approved_runs(run_ids: set[int]) -> set[int]:
    """Runs whose commands may be signed: small ones, or large ones a second person approved.
    A run is large when its agents plus those its requester targeted in unapproved runs of
    the preceding window exceed the threshold (splitting a job does not avoid approval)."""
    if not run_ids:
        return set()
    counts = dict(Command.objects.filter(run_id__in=run_ids).values("run_id")
                  .annotate(n=Count("id")).values_list("run_id", "n"))
    ok = set()
    for run in ScriptRun.objects.filter(pk__in=run_ids).only(
            "id", "requested_by_id", "approved_by_id", "created_at"):
        total = counts.get(run.pk, 0) + recent_agent_count(
            requester_id=run.requested_by_id, until=run.created_at, exclude_run=run.pk)
        large = total > settings.LARGE_JOB_THRESHOLD
        if not large or (run.approved_by_id is not None
                         and run.approved_by_id != run.requested_by_id):
            ok.add(run.pk)
    return ok


def sign_pending(key: Ed25519PrivateKey, limit: int = 500) -> dict[str, int]:
    """Sign queued commands; each row moves queued → signed with a conditional UPDATE, so
    two signers never both sign one command (and a cancel in between wins)."""
    now = timezone.now()
    rows = list(Command.objects.filter(status=CommandStatus.QUEUED)
                .select_related("agent").order_by("id")[:limit])
    allowed = _approved_runs({c.run_id for c in rows if c.run_id})
    signed = held = expired = 0
    signed_agents: set[int] = set()
    for command in rows:
        if command.expires_at <= now:
            expired += Command.objects.filter(pk=command.pk, status=CommandStatus.QUEUED).update(
                status=CommandStatus.EXPIRED, finished_at=now, reason="expired before signing")
            continue
        if command.run_id and command.run_id not in allowed:
            held += 1
            log.warning("not signing command %s: large job without a second approval",
                        command.uid)
            continue
        payload = command_payload(command)
        signature = b64e(key.sign(payload.encode("utf-8")))
        if Command.objects.filter(pk=command.pk, status=CommandStatus.QUEUED).update(
                status=CommandStatus.SIGNED, payload=seal_payload(payload),
                signature=signature,
                signed_at=now):
            signed += 1
            signed_agents.add(command.agent_id)
    if signed_agents:
        Agent.objects.filter(pk__in=sorted(signed_agents)).update(
            commands_waiting=True, commands_version=F("commands_version") + 1)
    return {"signed": signed, "held": held, "expired": expired}
