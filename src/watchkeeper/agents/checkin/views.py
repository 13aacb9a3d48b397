"""The agent API under /agent/v1/, kept apart from the UI's REST API (as Tactical RMM keeps
its apiv3): no sessions, no CSRF, no user tokens. Every route but enrollment authenticates
the agent by its request signature (auth.py); enrollment authenticates the token.

Errors are RFC 9457 problem+json with a `code` the agent acts on. Nothing a client sends can
produce a 5xx: bodies are size-capped, parsed defensively and validated whole first.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from watchkeeper.core.permissions import public

from .. import actions
from ..choices import AgentStatus
from ..models import Agent, QuarantinedPayload
from . import ingest
from .auth import AuthError, authenticate, pending
from .validation import Invalid, validate_checkin, validate_enroll

log = logging.getLogger(__name__)

QUARANTINE_BODY_CHARS = 65536


def problem_body(status: int, detail: str, *, code: str, errors: list[str] | None = None,
                 path: str = "") -> dict:
    """The RFC 9457 body; the lean check-in path (fastpath.py) answers with the same."""
    body = {"type": "about:blank", "title": detail.split(".")[0][:80], "status": status,
            "detail": detail, "code": code, "instance": path}
    if errors:
        body["errors"] = errors[:50]
    return body


def problem(status: int, detail: str, *, code: str, errors: list[str] | None = None,
            path: str = "") -> JsonResponse:
    return JsonResponse(problem_body(status, detail, code=code, errors=errors, path=path),
                        status=status, content_type="application/problem+json")


def too_large() -> AuthError:
    limit = settings.AGENT_MAX_BODY_BYTES
    return AuthError(413, "too_large", f"Body larger than {limit} bytes.")


def declared_length_too_large(content_length: str | None) -> bool:
    try:
        length = int(content_length or 0)
    except ValueError:
        length = 0
    return length > settings.AGENT_MAX_BODY_BYTES


def _read_body(request) -> bytes:
    if declared_length_too_large(request.META.get("CONTENT_LENGTH")):
        raise too_large()
    body = request.read(settings.AGENT_MAX_BODY_BYTES + 1)
    if len(body) > settings.AGENT_MAX_BODY_BYTES:
        raise too_large()
    return body


def checkin_answer(ack: dict, commands: list[dict]) -> dict:
    """An accepted check-in's answer, on either path: the writer's acknowledgement, the
    settings the agent follows, the commands handed out."""
    return {**ack, "status": AgentStatus.APPROVED, "interval": settings.AGENT_INTERVAL,
            "inventory_interval": settings.AGENT_INVENTORY_INTERVAL, "commands": commands}


def parse_body(body: bytes):
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Invalid([f"body: not valid UTF-8 JSON ({type(exc).__name__})"]) from exc
    # JSON can carry NUL only as the escape \u0000; PostgreSQL text cannot store it, so a
    # string holding one is refused here rather than failing deep inside a write.
    if b"\\u0000" in body and _has_nul(data):
        raise Invalid(["body: strings must not contain NUL characters"])
    # Nor can any database store a lone UTF-16 surrogate (only an escape such as \ud800
    # makes one): refused here, not as a failed write that would also fail the other
    # agents' check-ins of a lean batch.
    if _SURROGATE_ESCAPE.search(body) and _has_surrogate(data):
        raise Invalid(["body: strings must not contain lone surrogates"])
    return data


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _any_string(value, bad, depth: int = 0) -> bool:
    """Whether any string in a parsed JSON value (keys included) is `bad`."""
    if isinstance(value, str):
        return bad(value)
    if depth > 64:
        return False
    if isinstance(value, dict):
        return any(_any_string(k, bad) or _any_string(v, bad, depth + 1)
                   for k, v in value.items())
    if isinstance(value, list):
        return any(_any_string(v, bad, depth + 1) for v in value)
    return False


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _has_surrogate(value) -> bool:
    return _any_string(value, _unencodable)


def _has_nul(value) -> bool:
    return _any_string(value, lambda text: "\x00" in text)


def _quarantine(request, agent: Agent | None, body: bytes, reason: str) -> None:
    QuarantinedPayload.objects.create(
        agent=agent, path=request.path[:200], remote_ip=getattr(request, "client_ip", None),
        reason=reason[:4000].replace("\x00", "\ufffd"),
        body=body[:QUARANTINE_BODY_CHARS].decode("utf-8", "replace").replace("\x00", "\ufffd"))


@csrf_exempt
@require_POST
@public
def enroll(request):
    try:
        body = _read_body(request)
        data = validate_enroll(parse_body(body))
    except AuthError as exc:
        return problem(exc.status, exc.detail, code=exc.code, path=request.path)
    except Invalid as exc:
        return problem(400, "The enrollment request did not validate.", code="invalid",
                       errors=exc.errors, path=request.path)
    token = actions.find_enrollment_token(data["token"])
    if token is None or not token.is_usable:
        return problem(403, "Enrollment token unknown, expired, revoked or used up.",
                       code="bad_token", path=request.path)
    try:
        raw_key = base64.b64decode(data["public_key"], validate=True)
        Ed25519PublicKey.from_public_bytes(raw_key)
    except (binascii.Error, ValueError):
        return problem(400, "public_key is not a raw Ed25519 key.", code="invalid",
                       path=request.path)
    signer_key = actions.active_signer_key()
    if signer_key is None:
        return problem(503, "The command signer has not published its key yet; run "
                       "`watchkeeper signer --init`.", code="no_signer", path=request.path)
    try:
        agent = actions.enroll_agent(token=token, public_key=data["public_key"],
                                     facts=data.get("facts", {}),
                                     agent_version=data.get("agent_version", ""),
                                     ip=getattr(request, "client_ip", None))
    except actions.ActionError as exc:
        return problem(403, str(exc), code="bad_token", path=request.path)
    except IntegrityError:
        return problem(409, "This key is already enrolled; generate a new key to enroll "
                       "again.", code="key_in_use", path=request.path)
    return JsonResponse({
        "agent_id": str(agent.uid), "status": agent.status,
        "signer_public_key": signer_key.public_key,
        "interval": settings.AGENT_INTERVAL,
        "inventory_interval": settings.AGENT_INVENTORY_INTERVAL,
    }, status=201)


@csrf_exempt
@require_POST
@public
def checkin(request):
    # The lean path (fastpath.py, in front of Django in asgi.py) answers ordinary metric
    # check-ins in batches; this view takes the rest. Both store the metric part through
    # the same check-in writer (writer.py).
    # One transaction for the whole check-in (nonce, data, command hand-out): one commit
    # per request, and the answer is built only after it committed.
    try:
        body = _read_body(request)
        with transaction.atomic():
            agent = authenticate(request, body)
            answer = _checkin(request, agent, body)
    except AuthError as exc:
        return problem(exc.status, exc.detail, code=exc.code, path=request.path)
    if isinstance(answer, JsonResponse):
        return answer
    return JsonResponse(answer)


def _checkin(request, agent: Agent, body: bytes):
    if agent.status == AgentStatus.PENDING:
        exc = pending()
        return problem(exc.status, exc.detail, code=exc.code, path=request.path)
    try:
        batch = validate_checkin(parse_body(body))
    except Invalid as exc:
        _quarantine(request, agent, body, "; ".join(exc.errors))
        return problem(400, "The check-in did not validate.", code="invalid",
                       errors=exc.errors, path=request.path)
    try:
        answer = ingest.ingest_checkin(agent, batch, ip=getattr(request, "client_ip", None))
    except ValueError as exc:
        # The inventory refused a section shape the validator let through: still the
        # agent's payload, still a 4xx (the ingest's savepoint rolled its writes back).
        _quarantine(request, agent, body, f"inventory: {exc}")
        return problem(400, f"The inventory was refused: {exc}", code="invalid",
                       path=request.path)
    return checkin_answer(answer, ingest.pending_commands(agent))


@csrf_exempt
@require_POST
@public
def status(request):
    try:
        body = _read_body(request)
        with transaction.atomic():
            agent = authenticate(request, body)
    except AuthError as exc:
        return problem(exc.status, exc.detail, code=exc.code, path=request.path)
    return JsonResponse({
        "agent_id": str(agent.uid), "status": agent.status,
        "connectivity": agent.connectivity, "last_seq": agent.last_seq,
        "last_seen_at": agent.last_seen_at.isoformat() if agent.last_seen_at else None,
        "spool_dropped": agent.spool_dropped,
    })
