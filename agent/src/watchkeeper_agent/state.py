"""The agent's state directory: its key, its enrollment, counters and the command ledger.

Files are written atomically (temp file, fsync, rename) so a power cut leaves either the old
or the new version, never half of one.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .protocol import b64d, b64e

DEFAULT_STATE_DIR = "/var/lib/watchkeeper-agent"


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


@dataclass
class Enrollment:
    server: str
    agent_id: str
    signer_public_key: str  # base64 raw Ed25519 key pinned at enrollment
    status: str
    interval: int
    inventory_interval: int
    insecure: bool = False  # enrolled with --insecure: plain http:// allowed to this server


class State:
    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.key_path = self.dir / "agent.key"
        self.config_path = self.dir / "enrollment.json"
        self.counters_path = self.dir / "state.json"
        self.ledger_path = self.dir / "executed.json"
        self.spool_dir = self.dir / "spool"
        self.journal_dir = self.dir / "running"
        self.log_path = self.dir / "agent.log"

    def ensure(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.spool_dir.mkdir(exist_ok=True, mode=0o700)

    # --- identity -------------------------------------------------------------------------
    def load_or_create_key(self) -> Ed25519PrivateKey:
        """The agent's identity: generated here, never leaves the machine."""
        self.ensure()
        if self.key_path.exists():
            return self.load_key()
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        write_atomic(self.key_path, pem, 0o600)
        return key

    def load_key(self) -> Ed25519PrivateKey:
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{self.key_path} is not an Ed25519 key")
        return key

    @staticmethod
    def public_key_b64(key: Ed25519PrivateKey) -> str:
        return b64e(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                  serialization.PublicFormat.Raw))

    # --- enrollment -----------------------------------------------------------------------
    def save_enrollment(self, enrollment: Enrollment) -> None:
        self.ensure()
        write_atomic(self.config_path, json.dumps(enrollment.__dict__, indent=2).encode())

    def enrollment(self) -> Enrollment | None:
        data = _read_json(self.config_path, None)
        return Enrollment(**data) if data else None

    def signer_key(self) -> Ed25519PublicKey:
        enrollment = self.enrollment()
        if enrollment is None:
            raise RuntimeError("not enrolled")
        return Ed25519PublicKey.from_public_bytes(b64d(enrollment.signer_public_key))

    # --- counters -------------------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        data = _read_json(self.counters_path, {})
        data.setdefault("next_seq", 1)
        data.setdefault("acked_hashes", {})
        data.setdefault("dropped", {})
        data.setdefault("last_checkin", None)
        data.setdefault("last_error", None)
        data.setdefault("last_inventory", 0)
        return data

    def save_counters(self, data: dict[str, Any]) -> None:
        write_atomic(self.counters_path, json.dumps(data, sort_keys=True).encode())

    def take_seq(self) -> int:
        data = self.counters()
        seq = data["next_seq"]
        data["next_seq"] = seq + 1
        self.save_counters(data)
        return seq

    # --- command ledger: a nonce once seen is never run again ----------------------------
    def ledger(self) -> dict[str, int]:
        return _read_json(self.ledger_path, {})

    def remember_nonce(self, nonce: str, expires_at: int) -> bool:
        """Record `nonce`; False if it was already there (a replay). Expired entries go:
        a command past its expiry is refused on that ground alone."""
        ledger = self.ledger()
        if nonce in ledger:
            return False
        now = int(time.time())
        ledger = {n: exp for n, exp in ledger.items() if exp + 86400 > now}
        ledger[nonce] = int(expires_at)
        write_atomic(self.ledger_path, json.dumps(ledger).encode())
        return True


    # --- journal of running commands ------------------------------------------------------
    def journal_start(self, command_id: str, cap: int) -> JournalEntry:
        """Record (durably, before the script starts) that this process runs `command_id`."""
        self.ensure()
        self.journal_dir.mkdir(exist_ok=True, mode=0o700)
        entry = JournalEntry(self.journal_dir, _safe_id(command_id), os.getpid(), cap)
        write_atomic(entry.path, json.dumps({"id": command_id, "pid": entry.pid, "cap": cap,
                                             "started_at": time.time()}).encode())
        return entry

    def journal_finish(self, command_id: str) -> None:
        """The result of `command_id` is spooled: forget the journal entry and its output."""
        entry = JournalEntry(self.journal_dir, _safe_id(command_id), 0, 0)
        for path in (entry.path, entry.stdout_path, entry.stderr_path):
            path.unlink(missing_ok=True)

    def journal_orphans(self) -> list[JournalEntry]:
        """Entries of agent processes that are gone (not this one, not a live one)."""
        if not self.journal_dir.is_dir():
            return []
        orphans = []
        for path in sorted(self.journal_dir.glob("*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            pid = int(data.get("pid") or 0)
            if pid == os.getpid() or _alive(pid):
                continue
            entry = JournalEntry(self.journal_dir, path.stem, pid, int(data.get("cap") or 65536))
            entry.command_id = str(data.get("id", path.stem))
            orphans.append(entry)
        return orphans


class JournalEntry:
    def __init__(self, directory: Path, stem: str, pid: int, cap: int):
        self.command_id = stem
        self.pid = pid
        self.cap = cap
        self.path = directory / f"{stem}.json"
        self.stdout_path = directory / f"{stem}.out"
        self.stderr_path = directory / f"{stem}.err"


def _safe_id(command_id: str) -> str:
    return "".join(ch for ch in command_id if ch.isalnum() or ch == "-")[:64] or "unknown"


def _alive(pid: int) -> bool:
    """Whether a process with this id runs (POSIX); elsewhere assume not, once the agent
    restarted, which is when orphans are looked for."""
    if pid <= 0 or os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
