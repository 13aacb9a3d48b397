"""Writes of the agents app. Each action is one transaction with its audit row and event.

Telemetry ingest (metrics, inventory deltas) lives in ingest.py: it is data, not a change a
person made, so it writes no audit row per check-in; state transitions it causes (online,
spool drops, command results) do emit events, and command results are audited.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from watchkeeper.core import audit, crypto, events
from watchkeeper.core.choices import AuditAction
from watchkeeper.core.models import Client, Site

from . import events as ev
from .choices import (
    PENDING_COMMAND_STATES,
    AgentStatus,
    CommandStatus,
    Connectivity,
    RunStatus,
    ScriptLanguage,
    TargetKind,
)
from .models import Agent, Command, EnrollmentToken, Script, ScriptRun, ScriptVersion, SignerKey
from .scripts import templating

TOKEN_PREFIX = "wke"
SECRET_PURPOSE = "agents.script-parameter"
MASK = "••••••"
# Agents one person targeted within this window count together towards the large-job
# threshold, so splitting a job into small runs does not avoid the second approval.
LARGE_JOB_WINDOW = timedelta(minutes=10)


class ActionError(ValueError):
    """A request that cannot be carried out (shown to the user as a 400/409)."""


# --- Enrollment tokens -----------------------------------------------------------------------

def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_enrollment_token(*, actor, client: Client, site: Site, hours: float | None = None,
                            auto_approve: bool = False, note: str = "",
                            max_uses: int | None = None) -> tuple[EnrollmentToken, str]:
    """A new token; the raw secret is returned once and never stored."""
    if site.client_id != client.pk:
        raise ActionError("The site does not belong to that client.")
    hours = settings.ENROLLMENT_TOKEN_HOURS if hours is None else hours
    if not 0 < hours <= 24 * 30:
        raise ActionError("A token lives between a few minutes and 30 days.")
    prefix = secrets.token_hex(6)
    raw = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = EnrollmentToken.objects.create(
            client=client, site=site, note=note[:200], prefix=prefix, token_hash=hash_token(raw),
            auto_approve=auto_approve, max_uses=max_uses,
            expires_at=timezone.now() + timedelta(hours=hours),
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit.record(actor=actor, action=AuditAction.CREATE, obj=token, changes={
            "site": [None, site.name], "auto_approve": [None, auto_approve],
            "expires_at": [None, token.expires_at.isoformat()], "max_uses": [None, max_uses]})
        events.emit(ev.EnrollmentTokenCreated.of(token), client=client.pk)
    return token, raw


def revoke_enrollment_token(*, actor, token: EnrollmentToken) -> EnrollmentToken:
    with transaction.atomic():
        now = timezone.now()
        if not EnrollmentToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
                revoked_at=now):
            return token
        token.revoked_at = now
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=token,
                     changes={"revoked_at": [None, now.isoformat()]})
        events.emit(ev.EnrollmentTokenRevoked.of(token), client=token.client_id)
    return token


def find_enrollment_token(raw: str) -> EnrollmentToken | None:
    parts = raw.split("_", 2)  # the secret part is urlsafe base64 and may hold "_"
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1]:
        return None
    token = EnrollmentToken.objects.select_related("client", "site").filter(
        prefix=parts[1]).first()
    if token is None or not hmac.compare_digest(token.token_hash, hash_token(raw)):
        return None
    return token


# --- Agents ----------------------------------------------------------------------------------

def active_signer_key() -> SignerKey | None:
    return SignerKey.objects.filter(is_active=True).order_by("-created_at").first()


def install_command(raw: str) -> str:
    """The enroll command for a new token. It names the signer key's fingerprint when one is
    published, so the agent refuses a server (or a man in the middle) sending another key,
    and says --insecure when the server's own address is plain http (the agent refuses
    http:// without it)."""
    base = settings.BASE_URL.rstrip("/")
    command = f"watchkeeper-agent enroll --server {base} --token {raw}"
    if base.startswith("http://"):
        command += " --insecure"
    key = active_signer_key()
    if key is not None:
        command += f" --signer-fingerprint {key.fingerprint}"
    return command


def enroll_agent(*, token: EnrollmentToken, public_key: str, facts: dict[str, Any],
                 agent_version: str = "", ip: str | None = None) -> Agent:
    """A new agent from a verified token. Identity is the public key: a machine that reuses
    an old hostname becomes a new agent and inherits nothing."""
    actor = f"enrollment-token:{token.prefix}"
    hostname = str(facts.get("hostname") or "")[:255]
    with transaction.atomic():
        # Count the use with a conditional UPDATE so concurrent enrollments cannot exceed
        # max_uses or slip past a revocation that just committed.
        usable = EnrollmentToken.objects.filter(
            pk=token.pk, revoked_at__isnull=True, expires_at__gt=timezone.now()).filter(
            Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
        if not usable.update(uses=F("uses") + 1):
            raise ActionError("This enrollment token is expired, revoked or used up.")
        agent = Agent.objects.create(
            client=token.client, site=token.site, public_key=public_key, hostname=hostname,
            facts=facts, enrollment_token=token, agent_version=agent_version[:40], last_ip=ip)
        audit.record(actor=actor, action=AuditAction.CREATE, obj=agent, ip=ip, changes={
            "hostname": [None, hostname], "site": [None, token.site.name],
            "key": [None, agent.fingerprint], "status": [None, agent.status]})
        events.emit(ev.AgentEnrolled.of(agent), client=token.client_id)
        if token.auto_approve:
            _approve(actor=actor, agent=agent)
    return agent


def _approve(*, actor, agent: Agent) -> Agent:
    from watchkeeper.inventory import services as inventory

    now = timezone.now()
    device = inventory.register_agent_device(
        client_id=agent.client_id, site_id=agent.site_id, hostname=agent.hostname,
        agent_ref=str(agent.uid))
    updated = Agent.objects.filter(pk=agent.pk, status=AgentStatus.PENDING).update(
        status=AgentStatus.APPROVED, device=device, approved_at=now,
        approved_by=actor if getattr(actor, "is_authenticated", False) else None,
        next_due_at=now + offline_after())
    if not updated:
        raise ActionError("Only a pending agent can be approved.")
    agent.refresh_from_db()
    audit.record(actor=actor, action=AuditAction.UPDATE, obj=agent,
                 changes={"status": [AgentStatus.PENDING, AgentStatus.APPROVED],
                          "device": [None, device.pk]})
    events.emit(ev.AgentApproved.of(agent), client=agent.client_id)
    return agent


def approve_agent(*, actor, agent: Agent) -> Agent:
    with transaction.atomic():
        return _approve(actor=actor, agent=agent)


def reject_agent(*, actor, agent: Agent) -> Agent:
    return _set_status(actor=actor, agent=agent, to=AgentStatus.REJECTED,
                       allowed=(AgentStatus.PENDING,), event=ev.AgentRejected)


def revoke_agent(*, actor, agent: Agent) -> Agent:
    """Refuse the agent from its next request on and cancel what was waiting for it."""
    return _set_status(actor=actor, agent=agent, to=AgentStatus.REVOKED,
                       allowed=(AgentStatus.PENDING, AgentStatus.APPROVED),
                       event=ev.AgentRevoked)


def _set_status(*, actor, agent: Agent, to: str, allowed: tuple,
                event: type[ev.AgentRejected | ev.AgentRevoked]) -> Agent:
    from watchkeeper.inventory import services as inventory

    with transaction.atomic():
        before = agent.status
        if not Agent.objects.filter(pk=agent.pk, status__in=allowed).update(status=to):
            raise ActionError(f"A {before} agent cannot become {to}.")
        cancelled = Command.objects.filter(agent=agent, status__in=PENDING_COMMAND_STATES).update(
            status=CommandStatus.CANCELLED, finished_at=timezone.now(),
            reason=f"agent {to}")
        if agent.device_id:
            inventory.detach_agent(device_id=agent.device_id, agent_ref=str(agent.uid))
        agent.status = to
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=agent,
                     changes={"status": [before, to], "commands_cancelled": [None, cancelled]})
        events.emit(event.of(agent), client=agent.client_id)
    return agent


def delete_agent(*, actor, agent: Agent) -> None:
    """Delete the agent (its key stops working at once); the device record stays."""
    from watchkeeper.inventory import services as inventory

    with transaction.atomic():
        before = audit.snapshot(agent)
        if agent.device_id:
            inventory.detach_agent(device_id=agent.device_id, agent_ref=str(agent.uid))
        audit.record(actor=actor, action=AuditAction.DELETE, obj=agent,
                     changes={k: [v, None] for k, v in before.items()
                              if k in ("uid", "hostname", "status", "device_id")})
        client_id, deleted = agent.client_id, ev.AgentDeleted.of(agent)
        agent.delete()
        events.emit(deleted, client=client_id)


def offline_after() -> timedelta:
    if settings.AGENT_OFFLINE_AFTER:
        return timedelta(seconds=settings.AGENT_OFFLINE_AFTER)
    return timedelta(seconds=2 * settings.AGENT_INTERVAL + 30)


def mark_offline(*, agent_id: int, now) -> bool:
    """Claim the online → offline transition of one overdue agent (compare-and-set)."""
    with transaction.atomic():
        claimed = Agent.objects.filter(
            pk=agent_id, status=AgentStatus.APPROVED, connectivity=Connectivity.ONLINE,
            next_due_at__lt=now).update(connectivity=Connectivity.OFFLINE)
        if claimed:
            agent = Agent.objects.only("id", "uid", "client_id", "device_id", "last_seen_at",
                                       "hostname").get(pk=agent_id)
            events.emit(ev.AgentOffline.of(agent), client=agent.client_id)
    return bool(claimed)


# --- Script library --------------------------------------------------------------------------

def _validate_parameters(parameters: list) -> list[dict[str, Any]]:
    if not isinstance(parameters, list):
        raise ActionError("Parameters must be a list.")
    clean, seen = [], set()
    for item in parameters:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ActionError("Each parameter needs a name.")
        name = item["name"].strip()
        if not name.isidentifier() or name in seen:
            raise ActionError(f"Bad or repeated parameter name {name!r}.")
        seen.add(name)
        secret = bool(item.get("secret", False))
        if secret and str(item.get("default", "")):
            raise ActionError(f"Secret parameter {name!r} cannot have a default value.")
        clean.append({"name": name, "required": bool(item.get("required", False)),
                      "default": str(item.get("default", "")),
                      "description": str(item.get("description", ""))[:200],
                      "secret": secret})
    return clean


# --- Secret parameters: stored sealed, shown masked ------------------------------------------

def seal(value: str) -> dict[str, str]:
    return {"enc": crypto.encrypt(value, SECRET_PURPOSE)}


def open_value(value: Any) -> Any:
    """The plain value of a sealed argument (the signer needs it to sign the payload)."""
    if isinstance(value, dict) and "enc" in value:
        return crypto.decrypt(value["enc"], SECRET_PURPOSE)
    return value


def masked_value(value: Any) -> Any:
    return MASK if isinstance(value, dict) and "enc" in value else value


def masked_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    return {name: masked_value(value) for name, value in (parameters or {}).items()}


def masked_args(args: list) -> list:
    return [masked_value(value) for value in (args or [])]


def recent_agent_count(*, requester_id: int | None, until, exclude_run: int | None = None) -> int:
    """Agents targeted by one requester's runs in the window before `until` that no second
    person approved: they count together with a new run against the large-job threshold."""
    if requester_id is None:
        return 0
    commands = Command.objects.filter(
        run__requested_by_id=requester_id, run__approved_by__isnull=True,
        run__created_at__gt=until - LARGE_JOB_WINDOW, run__created_at__lte=until)
    if exclude_run is not None:
        commands = commands.exclude(run_id=exclude_run)
    return commands.count()


def create_script(*, actor, name: str, language: str, body: str, description: str = "",
                  parameters: list | None = None, timeout: int = 300) -> Script:
    with transaction.atomic():
        script = Script.objects.create(
            name=name.strip()[:200], description=description,
            created_by=actor if getattr(actor, "is_authenticated", False) else None)
        version = _new_version(actor=actor, script=script, language=language, body=body,
                               parameters=parameters or [], timeout=timeout)
        audit.record(actor=actor, action=AuditAction.CREATE, obj=script,
                     changes={"name": [None, script.name], "version": [None, version.version],
                              "language": [None, language]})
        events.emit(ev.ScriptCreated.of(script))
    return script


def update_script(*, actor, script: Script, body: str, language: str | None = None,
                  parameters: list | None = None, description: str | None = None,
                  timeout: int | None = None) -> ScriptVersion:
    """A new version; older versions stay, and runs keep pointing at the one they ran."""
    with transaction.atomic():
        current = script.current
        version = _new_version(
            actor=actor, script=script, language=language or current.language, body=body,
            parameters=current.parameters if parameters is None else parameters,
            timeout=timeout or current.timeout)
        fields = ["updated_at"]
        if description is not None:
            script.description = description
            fields.append("description")
        script.updated_at = timezone.now()
        script.save(update_fields=fields)
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=script,
                     changes={"version": [current.version, version.version]})
        events.emit(ev.ScriptChanged.of(version))
    return version


# Languages whose interpreters want LF line endings: bash fails on `$'cmd\r'`, and a
# browser's textarea sends CRLF. PowerShell reads CRLF and LF alike on every platform (and
# Windows editors write .ps1 files with CRLF), so its bodies are kept as typed.
LF_LANGUAGES = frozenset({ScriptLanguage.BASH, ScriptLanguage.PYTHON})


def script_text(language: str, body: str) -> str:
    """The body as the interpreter wants it: CRLF and lone CR become LF for bash/python."""
    if language in LF_LANGUAGES and "\r" in body:
        return body.replace("\r\n", "\n").replace("\r", "\n")
    return body


def _new_version(*, actor, script: Script, language: str, body: str, parameters: list,
                 timeout: int) -> ScriptVersion:
    if language not in ScriptLanguage.values:
        raise ActionError(f"Unknown language {language!r}.")
    body = script_text(language, body)
    if not body.strip():
        raise ActionError("The script is empty.")
    if not 1 <= int(timeout) <= 3600:
        raise ActionError("Timeout must be 1–3600 seconds.")
    try:
        templating.placeholders(body)
    except templating.TemplateError as exc:
        raise ActionError(str(exc)) from exc
    last = script.versions.order_by("-version").values_list("version", flat=True).first() or 0
    return ScriptVersion.objects.create(
        script=script, version=last + 1, language=language, body=body,
        parameters=_validate_parameters(parameters), timeout=int(timeout),
        created_by=actor if getattr(actor, "is_authenticated", False) else None)


def _target_agents(target_kind: str, target) -> tuple[Client, str, list[Agent]]:
    agents = Agent.objects.filter(status=AgentStatus.APPROVED).select_related(
        "device", "client", "site")
    if target_kind == TargetKind.DEVICE:
        return target.client, target.name, list(agents.filter(device=target))
    if target_kind == TargetKind.SITE:
        return target.client, f"{target.client.name} › {target.name}", list(
            agents.filter(site=target))
    if target_kind == TargetKind.CLIENT:
        return target, target.name, list(agents.filter(client=target))
    raise ActionError(f"Unknown target kind {target_kind!r}.")


def _arguments(version: ScriptVersion, parameters: dict[str, Any]) -> list[Any]:
    """The arguments in order; values of secret parameters come back sealed."""
    known = {p["name"] for p in version.parameters}
    unknown = set(parameters) - known
    if unknown:
        raise ActionError(f"Unknown parameters: {', '.join(sorted(unknown))}.")
    args = []
    for spec in version.parameters:
        value = parameters.get(spec["name"], spec.get("default", ""))
        value = "" if value is None else str(value)
        if spec.get("required") and value == "":
            raise ActionError(f"Parameter {spec['name']!r} is required.")
        if "\x00" in value:
            raise ActionError("Parameters cannot contain NUL bytes.")
        args.append(seal(value) if spec.get("secret") and value else value)
    return args


def run_script(*, actor, version: ScriptVersion, target_kind: str, target,
               parameters: dict[str, Any] | None = None, timeout: int | None = None,
               output_cap: int = 65536) -> ScriptRun:
    """One Command per approved agent of the target. Above the large-job threshold (counting
    the agents the same person targeted in the last LARGE_JOB_WINDOW) the commands wait
    (unsigned) for a second person's approval.

    `version` is the version the requester reviewed: if the script changed since, the run is
    refused rather than running a body nobody looked at."""
    parameters = parameters or {}
    client, label, agents = _target_agents(target_kind, target)
    if not agents:
        raise ActionError("No approved agent in that target.")
    args = _arguments(version, parameters)
    secret_names = {p["name"] for p in version.parameters if p.get("secret")}
    stored_parameters = {name: (seal(str(value)) if name in secret_names and value else value)
                         for name, value in parameters.items()}
    requester_id = getattr(actor, "pk", None) if getattr(actor, "is_authenticated",
                                                           False) else None
    now = timezone.now()
    ttl = timedelta(minutes=settings.COMMAND_TTL_MINUTES)
    with transaction.atomic():
        # Lock the script so an edit cannot slip in between this check and the run.
        Script.objects.select_for_update().filter(pk=version.script_id).first()
        latest = ScriptVersion.objects.filter(script_id=version.script_id).order_by(
            "-version").values_list("pk", flat=True).first()
        if latest != version.pk:
            raise ActionError("The script changed since you opened it: review the current "
                              "version and run it again.")
        recent = recent_agent_count(requester_id=requester_id, until=now)
        needs_approval = len(agents) + recent > settings.LARGE_JOB_THRESHOLD
        run = ScriptRun.objects.create(
            script_version=version, client=client, target_kind=target_kind,
            target_id=target.pk, target_label=label[:255], parameters=stored_parameters,
            status=RunStatus.AWAITING_APPROVAL if needs_approval else RunStatus.RUNNING,
            needs_approval=needs_approval, agent_count=len(agents),
            requested_by=actor if getattr(actor, "is_authenticated", False) else None)
        commands = []
        for agent in agents:
            # script_text: a version stored with CRLF by an older release runs too.
            body = templating.render(script_text(version.language, version.body), {
                "agent_id": str(agent.uid), "hostname": agent.hostname,
                "device_name": agent.device.name if agent.device else "",
                "client_name": agent.client.name,
                "site_name": agent.site.name if agent.site else "",
            })
            commands.append(Command(
                agent=agent, run=run, nonce=secrets.token_hex(16), language=version.language,
                body=body, args=args, timeout=timeout or version.timeout, output_cap=output_cap,
                status=(CommandStatus.AWAITING_APPROVAL if needs_approval
                        else CommandStatus.QUEUED),
                created_at=now, expires_at=now + ttl))
        Command.objects.bulk_create(commands)
        audit.record(actor=actor, action=AuditAction.CREATE, obj=run, changes={
            "script": [None, str(version)], "target": [None, label],
            "agents": [None, len(agents)],
            "parameters": [None, masked_parameters(stored_parameters)],
            "recent_agents": [None, recent], "needs_approval": [None, needs_approval]})
        events.emit(ev.ScriptRunCreated.of(run, version=version, agents=len(agents),
                                           needs_approval=needs_approval), client=client.pk)
    return run


def approve_run(*, actor, run: ScriptRun) -> ScriptRun:
    """The second person's approval of a large job; the requester cannot approve it."""
    if not run.needs_approval or run.status != RunStatus.AWAITING_APPROVAL:
        raise ActionError("This run is not waiting for approval.")
    if run.requested_by_id is not None and run.requested_by_id == getattr(actor, "pk", None):
        raise ActionError("A second person must approve a job you requested.")
    now = timezone.now()
    ttl = timedelta(minutes=settings.COMMAND_TTL_MINUTES)
    with transaction.atomic():
        if not ScriptRun.objects.filter(pk=run.pk, status=RunStatus.AWAITING_APPROVAL).update(
                status=RunStatus.RUNNING, approved_by=actor, approved_at=now):
            raise ActionError("This run is not waiting for approval.")
        # The expiry starts at approval, not at the request.
        released = Command.objects.filter(run=run, status=CommandStatus.AWAITING_APPROVAL).update(
            status=CommandStatus.QUEUED, expires_at=now + ttl)
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=run, changes={
            "status": [RunStatus.AWAITING_APPROVAL, RunStatus.RUNNING],
            "approved_by": [None, actor.email], "commands": [None, released]})
        events.emit(ev.ScriptRunApproved.of(run, commands=released), client=run.client_id)
    run.refresh_from_db()
    return run


def cancel_run(*, actor, run: ScriptRun) -> int:
    with transaction.atomic():
        cancelled = Command.objects.filter(run=run, status__in=PENDING_COMMAND_STATES).update(
            status=CommandStatus.CANCELLED, finished_at=timezone.now(), reason="run cancelled")
        ScriptRun.objects.filter(pk=run.pk).exclude(status=RunStatus.DONE).update(
            status=RunStatus.CANCELLED)
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=run,
                     changes={"status": [run.status, RunStatus.CANCELLED],
                              "commands_cancelled": [None, cancelled]})
        events.emit(ev.ScriptRunCancelled.of(run, commands=cancelled), client=run.client_id)
    return cancelled


def kill_switch(*, actor) -> int:
    """Cancel every command not yet finished, on every agent, in one statement."""
    with transaction.atomic():
        now = timezone.now()
        cancelled = Command.objects.filter(status__in=PENDING_COMMAND_STATES).update(
            status=CommandStatus.CANCELLED, finished_at=now, reason="kill switch")
        runs = ScriptRun.objects.filter(
            status__in=(RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)).update(
            status=RunStatus.CANCELLED)
        audit.record(actor=actor, action=AuditAction.UPDATE, object_type="agents.killswitch",
                     object_repr="kill switch",
                     changes={"commands_cancelled": [None, cancelled],
                              "runs_cancelled": [None, runs]})
        events.emit(ev.CommandsKilled(commands=cancelled, runs=runs))
    return cancelled


def register_signer_key(*, actor, public_key_raw: bytes) -> SignerKey:
    """Publish the signer's public key (called by the signer process, never by the web)."""
    public_key = base64.b64encode(public_key_raw).decode()
    with transaction.atomic():
        key, created = SignerKey.objects.get_or_create(public_key=public_key)
        if created or not key.is_active:
            SignerKey.objects.exclude(pk=key.pk).update(is_active=False)
            SignerKey.objects.filter(pk=key.pk).update(is_active=True)
            audit.record(actor=actor, action=AuditAction.CREATE, obj=key,
                         changes={"public_key": [None, public_key]})
            events.emit(ev.SignerKeyRegistered(public_key=public_key))
    return key
