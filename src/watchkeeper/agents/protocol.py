"""The agent wire protocol, server side. It mirrors agent/src/watchkeeper_agent/protocol.py
(the agent is installable on its own, so it cannot import the server); the end-to-end tests
run the real agent against this code, so the two cannot drift apart unnoticed."""

from __future__ import annotations

import base64
import hashlib

SIGNATURE_SCHEME = "WK-AGENT-V1"
HEADER_AGENT = "HTTP_X_WK_AGENT"
HEADER_TIMESTAMP = "HTTP_X_WK_TIMESTAMP"
HEADER_NONCE = "HTTP_X_WK_NONCE"
HEADER_SIGNATURE = "HTTP_X_WK_SIGNATURE"

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
    return "\n".join([
        SIGNATURE_SCHEME, method.upper(), path, str(int(timestamp)), nonce,
        hashlib.sha256(body).hexdigest(), agent_id,
    ]).encode("utf-8")
