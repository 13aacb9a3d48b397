"""Authenticate an agent request: Ed25519 signature over method, path, timestamp, nonce and
body hash; a timestamp within the allowed skew; a nonce never used before by this agent.

Order matters for cost and for leaks: cheap header checks first, then the one indexed
lookup of the agent, then the signature, and only a request that verified may write a
nonce row (so an attacker without the key cannot fill the nonce table).

The steps are pure functions (`parse_headers`, `verify_signature`, `check_allowed`,
`nonce_expiry`) shared by the Django view (`authenticate`) and the lean check-in path
(`fastpath.py` + `batch.py`), which runs the same steps on a batch of requests.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import connection
from django.utils import timezone

from ..choices import AgentStatus
from ..models import Agent, AgentNonce
from ..protocol import (
    HEADER_AGENT,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    b64d,
    canonical_request,
)
from ..sqlrows import values_rows, vendor_casts

NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass
class AuthError(Exception):
    status: int
    code: str
    detail: str


@dataclass(frozen=True)
class SignedHeaders:
    """The signature headers of one request, well-formed and within the clock window."""

    agent_id: str
    agent_uuid: uuid.UUID
    timestamp: int
    nonce: str
    signature: bytes


def parse_headers(meta: Mapping[str, str], *, now: float | None = None) -> SignedHeaders:
    """The cheap checks, no database: all four headers present and well-formed, timestamp
    within ±AGENT_CLOCK_SKEW. `meta` is keyed like Django's request.META."""
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
    if abs((time.time() if now is None else now) - ts) > skew:
        raise AuthError(401, "stale", f"Timestamp outside the accepted ±{skew} s window; "
                                      "check the endpoint's clock.")
    return SignedHeaders(agent_id, agent_uuid, ts, nonce, sig)


def verify_signature(public_key: str, headers: SignedHeaders, *, method: str, path: str,
                     body: bytes) -> None:
    message = canonical_request(method=method, path=path, timestamp=headers.timestamp,
                                nonce=headers.nonce, body=body, agent_id=headers.agent_id)
    try:
        Ed25519PublicKey.from_public_bytes(b64d(public_key)).verify(headers.signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise AuthError(401, "bad_signature", "Signature does not verify.") from exc


def check_allowed(status: str) -> None:
    """Revoked and rejected agents are refused even with a valid signature."""
    if status in (AgentStatus.REVOKED, AgentStatus.REJECTED):
        raise AuthError(403, status, f"This agent is {status}.")


def unknown_agent() -> AuthError:
    # Deleted agents land here: refused at once, with nothing to say about why.
    return AuthError(401, "unknown_agent", "Unknown agent.")


def replay() -> AuthError:
    return AuthError(401, "replay", "Nonce already used.")


def nonce_expiry(now: datetime | None = None) -> datetime:
    # Kept a little longer than the skew window: after that the timestamp check alone
    # refuses the request.
    return (now or timezone.now()) + timedelta(seconds=2 * settings.AGENT_CLOCK_SKEW + 60)


def find_agent(agent_uuid: uuid.UUID) -> Agent | None:
    # facts (free-form JSON from enrollment) is never needed on the hot path.
    # No ORDER BY (the model's default ordering would cost a sort and compile time).
    return next(iter(Agent.objects.filter(uid=agent_uuid).order_by().defer("facts")[:1]),
                None)


def pending() -> AuthError:
    return AuthError(403, "pending", "This agent waits for a technician's approval.")


def claim_nonces(pairs: list[tuple[int, str]], now: datetime | None = None
                 ) -> set[tuple[int, str]]:
    """Write each verified request's (agent id, nonce) to the ledger in one INSERT … ON
    CONFLICT DO NOTHING RETURNING (SQLite ≥ 3.35, PostgreSQL); returns the pairs written —
    a pair not returned is a replay, or an agent deleted since it was read (the SELECT
    skips those, so a deletion cannot fail a whole batch)."""
    nonce_table = connection.ops.quote_name(AgentNonce._meta.db_table)
    agent_table = connection.ops.quote_name(Agent._meta.db_table)
    params: list = [v for pair in pairs for v in pair]
    params.append(connection.ops.adapt_datetimefield_value(nonce_expiry(now)))
    sql = (f"WITH v(agent_id, nonce) AS (VALUES {values_rows(len(pairs), ('int', 'text'))}) "  # noqa: S608
           f"INSERT INTO {nonce_table} (agent_id, nonce, expires_at) "
           f"SELECT v.agent_id, v.nonce, %s{vendor_casts()['timestamptz']} FROM v "
           f"WHERE EXISTS (SELECT 1 FROM {agent_table} a WHERE a.id = v.agent_id) "
           "ON CONFLICT (agent_id, nonce) DO NOTHING RETURNING agent_id, nonce")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(int(a), n) for a, n in cursor.fetchall()}


def authenticate(request, body: bytes) -> Agent:
    """One request's whole check, its nonce claimed: runs inside the caller's transaction."""
    headers = parse_headers(request.META)
    agent = find_agent(headers.agent_uuid)
    if agent is None:
        raise unknown_agent()
    verify_signature(agent.public_key, headers, method=request.method, path=request.path,
                     body=body)
    check_allowed(agent.status)
    if not claim_nonces([(agent.pk, headers.nonce)]):
        raise replay()
    return agent
