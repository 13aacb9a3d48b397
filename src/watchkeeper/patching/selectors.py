"""Reads of patch state: a device's updates, the updates list with filters, and compliance
per device, per client and MSP-wide. Every read starts from scoped(); devices are read
through the inventory's selectors only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, Max, Min, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from watchkeeper.core.tenancy import scoped
from watchkeeper.inventory.selectors import DeviceQuery, filter_devices

from .models import DevicePatchState, DeviceUpdate

# A device whose agent has not reported its updates (or checked in) for this long is
# "not reporting": its numbers are stale.
REPORTING_WINDOW = timedelta(days=3)


@dataclass
class UpdateQuery:
    q: str = ""
    client: str = ""
    device: str = ""
    classification: str = ""
    source: str = ""
    reboot: str = ""

    @classmethod
    def from_params(cls, params) -> UpdateQuery:
        return cls(**{k: (params.get(k) or "").strip()[:200]
                      for k in cls.__dataclass_fields__})


def updates(user, query: UpdateQuery | None = None) -> QuerySet:
    """Available updates the user may see, filtered."""
    query = query or UpdateQuery()
    qs = scoped(DeviceUpdate.objects.all(), user)
    if query.client.isdigit():
        qs = qs.filter(client_id=int(query.client))
    if query.device.isdigit():
        qs = qs.filter(device_id=int(query.device))
    if query.classification:
        qs = qs.filter(classification=query.classification)
    if query.source:
        qs = qs.filter(source=query.source)
    if query.reboot in ("yes", "no"):
        qs = qs.filter(reboot=query.reboot == "yes")
    if query.q:
        qs = qs.filter(Q(name__icontains=query.q) | Q(origin__icontains=query.q))
    return qs.order_by("name", "device_id")


def device(user, device_id: int):
    """The device (through the inventory's selector: a device of another tenant is None)."""
    return filter_devices(user, DeviceQuery()).filter(pk=device_id).first()


def device_state(user, device_id: int) -> DevicePatchState | None:
    return scoped(DevicePatchState.objects.filter(device_id=device_id), user).first()


def days_behind(oldest: datetime | None, now: datetime | None = None) -> int | None:
    if oldest is None:
        return None
    return max(0, ((now or timezone.now()) - oldest).days)


def _agent_devices(user, client_id: int | None = None) -> QuerySet:
    """Devices with an agent: the ones expected to report their updates."""
    qs = filter_devices(user, DeviceQuery(client=str(client_id or ""))).exclude(agent_ref="")
    return qs


def device_compliance(user, client_id: int | None = None) -> list[dict[str, Any]]:
    """Per device with an agent: its patch numbers and whether it reports."""
    now = timezone.now()
    cutoff = now - REPORTING_WINDOW
    devices = _agent_devices(user, client_id).values(
        "id", "name", "client_id", "client__name", "last_seen_at")
    states = {s.device_id: s for s in scoped(DevicePatchState.objects.filter(
        device_id__in=[d["id"] for d in devices]), user)}
    rows = []
    for d in devices:
        s = states.get(d["id"])
        reporting = bool(s and s.reported_at and d["last_seen_at"]
                         and d["last_seen_at"] >= cutoff)
        rows.append({
            "device_id": d["id"], "device": d["name"], "client_id": d["client_id"],
            "client": d["client__name"], "reporting": reporting,
            "reported_at": s.reported_at if s else None,
            "available": s.available if s else None,
            "security": s.security if s else None,
            "days_behind": days_behind(s.oldest_security_at, now) if s else None,
            "reboot_pending": bool(s and s.reboot_pending),
        })
    rows.sort(key=lambda r: (r["reporting"], -(r["security"] or 0), r["device"]))
    return rows


def client_compliance(user) -> list[dict[str, Any]]:
    """Per client the user may see: devices with an agent, devices missing security
    updates, missing security updates in all, days behind the oldest missing security
    update, reboots pending, devices not reporting."""
    now = timezone.now()
    cutoff = now - REPORTING_WINDOW
    reported = DevicePatchState.objects.filter(device_id=OuterRef("pk"),
                                               reported_at__isnull=False)
    per_client = {r["client_id"]: r for r in _agent_devices(user).order_by().annotate(
        has_report=Exists(reported)).values("client_id", "client__name").annotate(
        devices=Count("id"),
        not_reporting=Count("id", filter=Q(has_report=False) | Q(last_seen_at__lt=cutoff)
                            | Q(last_seen_at__isnull=True)))}
    states = scoped(DevicePatchState.objects.all(), user).values("client_id").annotate(
        missing_devices=Count("device_id", filter=Q(security__gt=0)),
        missing_security=Sum("security"), available=Sum("available"),
        oldest=Min("oldest_security_at"),
        reboot_pending=Count("device_id", filter=Q(reboot_pending=True)),
        last_report=Max("reported_at"))
    by_client = {s["client_id"]: s for s in states}
    rows = []
    for client_id, c in per_client.items():
        s = by_client.get(client_id, {})
        rows.append({
            "client_id": client_id, "client": c["client__name"], "devices": c["devices"],
            "not_reporting": c["not_reporting"],
            "missing_devices": s.get("missing_devices") or 0,
            "missing_security": s.get("missing_security") or 0,
            "available": s.get("available") or 0,
            "days_behind": days_behind(s.get("oldest"), now),
            "reboot_pending": s.get("reboot_pending") or 0,
        })
    rows.sort(key=lambda r: (-r["missing_security"], r["client"]))
    return rows


def msp_compliance(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """MSP-wide totals of `client_compliance` rows."""
    behind = [r["days_behind"] for r in rows if r["days_behind"] is not None]
    return {key: sum(r[key] for r in rows) for key in (
        "devices", "not_reporting", "missing_devices", "missing_security", "available",
        "reboot_pending")} | {"days_behind": max(behind) if behind else None}
