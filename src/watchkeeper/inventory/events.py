"""The events of the inventory: devices, conflicts, imports, discovery, device relations
(see core.catalogue)."""

from __future__ import annotations

from watchkeeper.core.catalogue import EventData, declare, declare_crud


@declare("device.created")
class DeviceCreated(EventData):
    """A device entered the inventory; `source` says how (manual, agent, import,
    discovery) and `source_ref` from what (a user, an agent's uid, an import run)."""

    id: int
    name: str
    source: str
    source_ref: str


@declare("device.changed")
class DeviceChanged(EventData):
    """Fields of a device changed; `changed` names them, `source`/`source_ref` say who
    wrote them (manual, agent, import)."""

    id: int
    changed: list[str]
    source: str
    source_ref: str


@declare("device.conflict_resolved")
class DeviceConflictResolved(EventData):
    """A person settled a field conflict between two sources (`take` or `keep`)."""

    id: int
    conflict_id: int
    field: str
    choice: str

    @classmethod
    def of(cls, conflict, *, choice: str) -> DeviceConflictResolved:
        return cls(id=conflict.device_id, conflict_id=conflict.pk, field=conflict.field,
                   choice=choice)


@declare("device_view.created")
class DeviceViewCreated(EventData):
    """A saved device list view was created."""

    id: int


@declare("device_import.uploaded")
class DeviceImportUploaded(EventData):
    """A device import file was uploaded (`rows` read)."""

    id: int
    rows: int


@declare("device_import.mapped")
class DeviceImportMapped(EventData):
    """An import's columns were mapped; `counts` previews create/update/errors."""

    id: int
    counts: dict[str, int]


@declare("device_import.applied")
class DeviceImportApplied(EventData):
    """An import was applied; `counts` says what it created, updated and refused."""

    id: int
    counts: dict[str, int]


@declare("discovery.started")
class DiscoveryStarted(EventData):
    """A network discovery run was queued."""

    id: int


@declare("discovery.finished")
class DiscoveryFinished(EventData):
    """A discovery run finished: `found` hosts answered, `new` of them unknown."""

    id: int
    found: int
    new: int


@declare("discovery.failed")
class DiscoveryFailed(EventData):
    """A discovery run failed (or was abandoned by a dead worker)."""

    id: int


@declare("discovery.host_ignored")
class DiscoveryHostIgnored(EventData):
    """A person ignored a host a discovery proposed."""

    id: int


# Devices are deleted through core.actions.delete_object (created and changed above).
declare_crud("inventory.Device", module=__name__, verbs=("deleted",))
declare_crud("inventory.SoftwareLicence", module=__name__)
# Manual relations are created and deleted through core.actions (relations/actions.py).
declare_crud("inventory.DeviceRelation", module=__name__, verbs=("created", "deleted"))


@declare("devicerelation.observed")
class DeviceRelationObserved(EventData):
    """What an observing source (agent, discovery) sees a device depend on changed: its
    relations of `kind` from `source` now name the devices in `parents`."""

    device_id: int
    kind: str
    source: str
    parents: list[int]

