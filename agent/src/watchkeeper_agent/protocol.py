"""The wire protocol shared with the server (src/watchkeeper/agents/protocol.py mirrors it).

Every request is signed with the agent's Ed25519 key over a canonical string, so the server
can check who sent it, that the body was not altered, and (timestamp + nonce) that it is not
a replay. Commands travel the other way as a JSON document signed by the server's signer.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

SIGNATURE_SCHEME = "WK-AGENT-V1"
HEADER_AGENT = "X-WK-Agent"
HEADER_TIMESTAMP = "X-WK-Timestamp"
HEADER_NONCE = "X-WK-Nonce"
HEADER_SIGNATURE = "X-WK-Signature"

INVENTORY_SECTIONS = (
    "system", "disks", "interfaces", "software", "services", "users", "logged_in", "ports",
    "updates", "drives",
)


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def canonical_request(*, method: str, path: str, timestamp: int, nonce: str, body: bytes,
                      agent_id: str) -> bytes:
    """The bytes an agent signs for one request."""
    return "\n".join([
        SIGNATURE_SCHEME, method.upper(), path, str(int(timestamp)), nonce,
        hashlib.sha256(body).hexdigest(), agent_id,
    ]).encode("utf-8")


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no spaces; the basis of hashes and signatures."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      default=str).encode("utf-8")


def section_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()
