"""Canonical JSON — sorted keys, no spaces, UTF-8, anything not JSON as its str() — and its
SHA-256: the one form the platform hashes and signs (inventory section hashes the agent
computes the same way, signed command payloads, webhook bodies)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def canonical_hash(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
