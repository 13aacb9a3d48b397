"""The events of the patching app (declared in the catalogue: see core.catalogue)."""

from __future__ import annotations

from watchkeeper.core.catalogue import EventData, declare


@declare("patch_state.changed")
class PatchStateChanged(EventData):
    """A device's patch state changed: updates appeared or went away, or its reboot flag."""

    id: int  # the device's id (one patch state per device)
    available: int
    security: int
    oldest_security_at: str | None
    reboot_pending: bool
    appeared: list[str]
    resolved: list[str]

    @classmethod
    def of(cls, state, *, appeared=(), resolved=()) -> PatchStateChanged:
        return cls(id=state.device_id, available=state.available, security=state.security,
                   oldest_security_at=state.oldest_security_at.isoformat()
                   if state.oldest_security_at else None,
                   reboot_pending=state.reboot_pending,
                   appeared=sorted(appeared)[:200], resolved=sorted(resolved)[:200])
