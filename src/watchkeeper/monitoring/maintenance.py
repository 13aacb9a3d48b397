"""Maintenance windows: while one covers a device (directly, through its site or its
client), its alerts are recorded but marked suppressed and nobody is notified."""

from __future__ import annotations

from datetime import datetime, timedelta

from dateutil.rrule import rrulestr
from django.db.models import Q

from .models import MaintenanceWindow


def occurrences(window: MaintenanceWindow, start: datetime, end: datetime
                ) -> list[tuple[datetime, datetime]]:
    """[(from, to)] of the window's occurrences that overlap [start, end)."""
    length = timedelta(minutes=window.duration_minutes)
    if not window.rrule:
        begin = window.starts_at
        return [(begin, begin + length)] if begin < end and begin + length > start else []
    rule = rrulestr(window.rrule, dtstart=window.starts_at)
    return [(b, b + length) for b in rule.between(start - length, end, inc=True)
            if b + length > start]


def is_active(window: MaintenanceWindow, at: datetime) -> bool:
    return bool(occurrences(window, at, at + timedelta(microseconds=1)))


def windows_for(client_id: int | None, device_id: int | None, site_id: int | None = None):
    if client_id is None:
        return MaintenanceWindow.objects.none()
    if device_id and site_id is None:
        from watchkeeper.inventory.selectors import all_devices

        site_id = all_devices().filter(pk=device_id).values_list("site_id", flat=True).first()
    scope = Q(site__isnull=True, device__isnull=True)
    if site_id:
        scope |= Q(site_id=site_id, device__isnull=True)
    if device_id:
        scope |= Q(device_id=device_id)
    return MaintenanceWindow.objects.filter(scope, client_id=client_id)


def in_maintenance(client_id: int | None, device_id: int | None, at: datetime) -> bool:
    return any(is_active(w, at) for w in windows_for(client_id, device_id))
