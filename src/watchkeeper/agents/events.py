"""The events of the agents app (declared in the catalogue: see core.catalogue)."""

from __future__ import annotations

from watchkeeper.core.catalogue import EventData, declare


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
