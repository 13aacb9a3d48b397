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
