"""Authenticate an agent request: Ed25519 signature over method, path, timestamp, nonce and
body hash; a timestamp within the allowed skew; a nonce never used before by this agent.

Order matters for cost and for leaks: cheap header checks first, then the one indexed
lookup of the agent, then the signature, and only a request that verified may write a
nonce row (so an attacker without the key cannot fill the nonce table).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import connection
from django.utils import timezone

from .choices import AgentStatus
from .models import Agent, AgentNonce
from .protocol import (
    HEADER_AGENT,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    b64d,
    canonical_request,
)

NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass
class AuthError(Exception):
    status: int
    code: str
    detail: str


def authenticate(request, body: bytes) -> Agent:
    meta = request.META
    agent_id = meta.get(HEADER_AGENT, "")
    timestamp = meta.get(HEADER_TIMESTAMP, "")
    nonce = meta.get(HEADER_NONCE, "")
    signature = meta.get(HEADER_SIGNATURE, "")
    if not (agent_id and timestamp and nonce and signature):
        raise AuthError(401, "unsigned", "Missing agent signature headers.")
    try:
        agent_uuid = uuid.UUID(agent_id)
        ts = int(timestamp)
        sig = b64d(signature)
    except ValueError as exc:
        raise AuthError(401, "malformed_auth", "Malformed agent signature headers.") from exc
    if not NONCE_RE.match(nonce):
        raise AuthError(401, "malformed_auth", "Malformed nonce.")
    skew = settings.AGENT_CLOCK_SKEW
    if abs(time.time() - ts) > skew:
        raise AuthError(401, "stale", f"Timestamp outside the accepted ±{skew} s window; "
                                      "check the endpoint's clock.")
    # facts (free-form JSON from enrollment) is never needed on the hot path.
    # No ORDER BY (the model's default ordering would cost a sort and compile time).
    agent = next(iter(Agent.objects.filter(uid=agent_uuid).order_by().defer("facts")[:1]),
                 None)
    if agent is None:
        # Deleted agents land here: refused at once, with nothing to say about why.
        raise AuthError(401, "unknown_agent", "Unknown agent.")
    message = canonical_request(method=request.method, path=request.path, timestamp=ts,
                                nonce=nonce, body=body, agent_id=agent_id)
    try:
        Ed25519PublicKey.from_public_bytes(b64d(agent.public_key)).verify(sig, message)
    except (InvalidSignature, ValueError) as exc:
        raise AuthError(401, "bad_signature", "Signature does not verify.") from exc
    if agent.status in (AgentStatus.REVOKED, AgentStatus.REJECTED):
        raise AuthError(403, agent.status, f"This agent is {agent.status}.")
    # Kept a little longer than the skew window: after that the timestamp check alone
    # refuses the request. ON CONFLICT DO NOTHING (SQLite ≥ 3.24, PostgreSQL) reports a
    # replay as "no row inserted", without a savepoint round trip.
    expires = timezone.now() + timedelta(seconds=2 * skew + 60)
    table = connection.ops.quote_name(AgentNonce._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (agent_id, nonce, expires_at) VALUES (%s, %s, %s) "  # noqa: S608
            "ON CONFLICT (agent_id, nonce) DO NOTHING",
            [agent.pk, nonce, connection.ops.adapt_datetimefield_value(expires)])
        inserted = cursor.rowcount
    if inserted != 1:
        raise AuthError(401, "replay", "Nonce already used.")
    return agent
