"""Reads of device relations, for the inventory's pages and API and for other apps
(monitoring's dependency suppression reads `parent_device_ids` / `child_device_ids` /
`clients_with_relations`; change impact and network diagrams will read the same).

Which relations count: for one device and one kind, manual relations win — when a person
typed a parent, observed rows of that kind are shown (and flagged when they disagree) but do
not count; otherwise every observed parent counts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Q

from watchkeeper.core.tenancy import scoped

from ..models import Device
from .choices import SINGLE_PARENT, RelationSource
from .models import DeviceRelation


def _effective(rows: Iterable[tuple]) -> list[tuple]:
    """Rows (kind, parent_id, device_id, site_id, source) that count: per (child, kind),
    the manual ones if there are any, else all of them."""
    rows = list(rows)
    manual = {(r[0], r[2], r[3]) for r in rows if r[4] == RelationSource.MANUAL}
    return [r for r in rows if r[4] == RelationSource.MANUAL or (r[0], r[2], r[3]) not in manual]


_FIELDS = ("kind", "parent_id", "device_id", "site_id", "source")


def parent_device_ids(device_id: int) -> list[int]:
    """What the device depends on: the parents of its own relations and, when it has a
    site, of the site's relations (a site's uplink)."""
    site_id = Device.objects.filter(pk=device_id).values_list("site_id", flat=True).first()
    cond = Q(device_id=device_id)
    if site_id:
        cond |= Q(site_id=site_id, device__isnull=True)
    rows = _effective(DeviceRelation.objects.filter(cond).values_list(*_FIELDS))
    return sorted({r[1] for r in rows if r[1] != device_id})


def child_device_ids(parent_id: int) -> list[int]:
    """What depends on the device: its relations' devices, and every device of a site it
    is the uplink of."""
    rows = _effective(DeviceRelation.objects.filter(parent_id=parent_id)
                      .values_list(*_FIELDS))
    devices = {r[2] for r in rows if r[2]}
    sites = {r[3] for r in rows if r[3] and not r[2]}
    if sites:
        devices |= set(Device.objects.filter(site_id__in=sites).values_list("id", flat=True))
    devices.discard(parent_id)
    return sorted(devices)


def clients_with_relations(client_ids: Iterable[int]) -> set[int]:
    return set(DeviceRelation.objects.filter(client_id__in=list(client_ids))
               .values_list("client_id", flat=True).distinct())


@dataclass
class KindView:
    """One kind of relation of one device, for its page: every row, and whether sources
    disagree about the parent."""

    kind: str
    label: str
    rows: list = field(default_factory=list)
    conflict: bool = False


def for_device(device, user) -> dict[str, list]:
    """The device's relations as the user may see them: `up` — what it (or its site)
    depends on, grouped by kind with conflicts flagged — and `down` — what depends on it."""
    visible = scoped(DeviceRelation.objects.select_related("parent", "device", "site"), user)
    cond = Q(device=device)
    if device.site_id:
        cond |= Q(site_id=device.site_id, device__isnull=True)
    groups: dict[str, KindView] = {}
    for row in visible.filter(cond).order_by("kind", "source", "parent__name", "id"):
        view = groups.setdefault(row.kind, KindView(row.kind, row.get_kind_display()))
        view.rows.append(row)
    for view in groups.values():
        parents_by_source = defaultdict(set)
        for row in view.rows:
            parents_by_source[row.source].add(row.parent_id)
        distinct = {p for ps in parents_by_source.values() for p in ps}
        view.conflict = view.kind in SINGLE_PARENT and len(parents_by_source) > 1 \
            and len(distinct) > 1
    down = list(visible.filter(parent=device).order_by("kind", "device__name", "id"))
    return {"up": list(groups.values()), "down": down}


def conflicts(user, limit: int = 200) -> list[dict]:
    """Devices whose sources name different parents for a one-parent kind (for the
    reconciliation page): [{device_id, kind, parents: {source: [parent ids]}}]."""
    rows = scoped(DeviceRelation.objects.filter(device__isnull=False,
                                                kind__in=sorted(SINGLE_PARENT)), user)
    by_pair: dict[tuple, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for kind, parent_id, device_id, _site, source in rows.values_list(*_FIELDS):
        by_pair[(device_id, kind)][source].add(parent_id)
    found = []
    for (device_id, kind), sources in sorted(by_pair.items()):
        if len(sources) > 1 and len({p for ps in sources.values() for p in ps}) > 1:
            found.append({"device_id": device_id, "kind": kind,
                          "parents": {s: sorted(ps) for s, ps in sources.items()}})
            if len(found) >= limit:
                break
    return found
