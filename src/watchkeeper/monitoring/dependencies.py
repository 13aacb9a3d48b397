"""Dependencies from the inventory's device relations (a device's gateway, its upstream
switch, a VM's host, what it depends on or is powered by, a site's uplink): while a parent
has an open critical alert, the alerts of the devices behind it hang under that one parent
alert, suppressed, so the team gets one notification instead of one per device. The
relations are read through the inventory's selectors (inventory/relations/selectors.py)."""

from __future__ import annotations

from watchkeeper.inventory.relations.selectors import child_device_ids, parent_device_ids

from .choices import OPEN_STATUSES, State, Suppression
from .models import Alert


def parent_alert(client_id: int | None, device_id: int | None) -> Alert | None:
    """The open critical alert of one of the device's parents, if any (the root of a chain
    of parents, so grandchildren hang under the first alert raised)."""
    if not device_id:
        return None
    parents = parent_device_ids(device_id)
    if not parents:
        return None
    alert = (Alert.objects.filter(device_id__in=parents, status__in=OPEN_STATUSES,
                                  severity=State.CRITICAL)
             .order_by("opened_at", "id").first())
    if alert is not None and alert.parent_id:
        return alert.parent
    return alert


def adopt_children(alert: Alert) -> int:
    """A parent just went critical: hang the open alerts of the devices behind it under
    it. Returns how many it adopted."""
    if not alert.device_id or alert.severity != State.CRITICAL or alert.parent_id:
        return 0
    children = child_device_ids(alert.device_id)
    if not children:
        return 0
    return Alert.objects.filter(device_id__in=children, status__in=OPEN_STATUSES,
                                parent__isnull=True).exclude(pk=alert.pk).update(
        parent=alert, suppressed=Suppression.DEPENDENCY)
