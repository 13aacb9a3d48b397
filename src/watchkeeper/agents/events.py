"""The events of the agents app (declared in the catalogue: see core.catalogue)."""

from __future__ import annotations

from watchkeeper.core.catalogue import EventData, declare, shape


@declare("agent.offline")
class AgentOffline(EventData):
    """An approved agent missed its check-ins: it is offline now."""

    id: int
    uid: str
    device_id: int | None
    hostname: str
    last_seen_at: str | None

    @classmethod
    def of(cls, agent) -> AgentOffline:
        return cls(id=agent.pk, uid=str(agent.uid), device_id=agent.device_id,
                   hostname=agent.hostname,
                   last_seen_at=agent.last_seen_at.isoformat() if agent.last_seen_at
                   else None)


@declare("agent.online")
class AgentOnline(EventData):
    """An offline (or never seen) agent checked in: it is online again."""

    id: int
    uid: str
    device_id: int | None

    @classmethod
    def of(cls, agent) -> AgentOnline:
        return cls(id=agent.pk, uid=str(agent.uid), device_id=agent.device_id)


@declare("agent.spool_overflow")
class AgentSpoolOverflow(EventData):
    """An agent reported dropping spooled readings (its spool was full); totals per kind."""

    id: int
    uid: str
    dropped_total: dict[str, int]
    dropped_new: dict[str, int]

    @classmethod
    def of(cls, agent, *, total: dict[str, int], new: dict[str, int]) -> AgentSpoolOverflow:
        return cls(id=agent.pk, uid=str(agent.uid), dropped_total=total, dropped_new=new)


@declare("agent.enrolled")
class AgentEnrolled(EventData):
    """A new agent enrolled with a token (pending approval unless the token auto-approves)."""

    id: int
    uid: str
    hostname: str

    @classmethod
    def of(cls, agent) -> AgentEnrolled:
        return cls(id=agent.pk, uid=str(agent.uid), hostname=agent.hostname)


@declare("agent.approved")
class AgentApproved(EventData):
    """An agent was approved and linked to its device in the inventory."""

    id: int
    uid: str
    device_id: int

    @classmethod
    def of(cls, agent) -> AgentApproved:
        return cls(id=agent.pk, uid=str(agent.uid), device_id=agent.device_id)


@shape
class _AgentRef(EventData):
    id: int
    uid: str

    @classmethod
    def of(cls, agent):
        return cls(id=agent.pk, uid=str(agent.uid))


@declare("agent.rejected")
class AgentRejected(_AgentRef):
    """A pending agent was rejected: it may not check in."""


@declare("agent.revoked")
class AgentRevoked(_AgentRef):
    """An agent was revoked: refused from its next request on, its waiting commands
    cancelled."""


@declare("agent.deleted")
class AgentDeleted(_AgentRef):
    """An agent was deleted (its device record stays)."""


@declare("enrollment_token.created")
class EnrollmentTokenCreated(EventData):
    """An enrollment token was created for a client's site."""

    id: int
    site_id: int
    auto_approve: bool


@declare("enrollment_token.revoked")
class EnrollmentTokenRevoked(EventData):
    """An enrollment token was revoked: no more agents enroll with it."""

    id: int


@declare("script.created")
class ScriptCreated(EventData):
    """A script was added to the library (version 1)."""

    id: int
    name: str


@declare("script.changed")
class ScriptChanged(EventData):
    """A script got a new version."""

    id: int
    version: int

    @classmethod
    def of(cls, version) -> ScriptChanged:
        return cls(id=version.script_id, version=version.version)


@declare("script_run.created")
class ScriptRunCreated(EventData):
    """A script run was requested on agents (running, or awaiting a second approval)."""

    id: int
    script_id: int
    version: int
    agents: int
    needs_approval: bool

    @classmethod
    def of(cls, run, *, version, agents: int, needs_approval: bool) -> ScriptRunCreated:
        return cls(id=run.pk, script_id=version.script_id, version=version.version,
                   agents=agents, needs_approval=needs_approval)


@declare("script_run.approved")
class ScriptRunApproved(EventData):
    """A script run awaiting approval was approved; `commands` were released."""

    id: int
    commands: int

    @classmethod
    def of(cls, run, *, commands: int) -> ScriptRunApproved:
        return cls(id=run.pk, commands=commands)


@declare("script_run.cancelled")
class ScriptRunCancelled(EventData):
    """A script run was cancelled; `commands` not yet run were cancelled with it."""

    id: int
    commands: int

    @classmethod
    def of(cls, run, *, commands: int) -> ScriptRunCancelled:
        return cls(id=run.pk, commands=commands)


@declare("script_run.finished")
class ScriptRunFinished(EventData):
    """Every command of a script run has finished."""

    id: int


@declare("command.finished")
class CommandFinished(EventData):
    """An agent reported the result of one command (a script run on its device)."""

    id: int
    uid: str
    run_id: int | None
    agent_id: int
    device_id: int | None
    status: str
    exit_code: int | None

    @classmethod
    def of(cls, command, *, agent, status: str, exit_code: int | None) -> CommandFinished:
        return cls(id=command.pk, uid=str(command.uid), run_id=command.run_id,
                   agent_id=agent.pk, device_id=agent.device_id, status=status,
                   exit_code=exit_code)


@declare("commands.killed")
class CommandsKilled(EventData):
    """The kill switch: every waiting command and running script run was cancelled."""

    commands: int
    runs: int


@declare("signer.key_registered")
class SignerKeyRegistered(EventData):
    """A new command-signing public key was registered (agents pin it)."""

    public_key: str
