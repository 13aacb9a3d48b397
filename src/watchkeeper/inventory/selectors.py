"""Reads of the inventory: the device list query (shared by the page, CSV export and API),
licence seat counts and reconciliation lists. Every read starts from scoped()."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from watchkeeper.core.converters import filter_by_id
from watchkeeper.core.tenancy import scoped

from .choices import ConflictStatus
from .models import (
    Device,
    DeviceSection,
    FieldConflict,
    FieldProvenance,
    NetworkAddress,
    SoftwareInstall,
    SoftwareLicence,
)
from .services import normalise_mac

# A device whose last sign of life is older than this is shown offline. The agents app
# writes Device.last_seen_at at most every 5 minutes for check-ins without inventory (so a
# fleet's heartbeats do not each rewrite the hot row); the window covers that plus margin.
# Precise per-agent offline state and its alerts belong to the agents app (agent.offline).
ONLINE_WINDOW = timedelta(minutes=15)

COLUMNS = {
    "name": "Name", "client": "Client", "site": "Site", "kind": "Kind", "status": "Status",
    "os": "OS", "ip": "IP", "serial": "Serial", "model": "Model", "last_seen": "Last seen",
    "updates": "Pending updates", "reboot": "Reboot", "assigned": "Assigned to",
    "location": "Location", "warranty": "Warranty end",
}
DEFAULT_COLUMNS = ("name", "client", "site", "kind", "os", "ip", "last_seen", "updates",
                   "reboot")
SORTS = {
    "name": ("name", "id"), "client": ("client__name", "name", "id"),
    "site": ("site__name", "name", "id"), "kind": ("kind", "name", "id"),
    "status": ("status", "name", "id"), "os": ("os_name", "os_version", "id"),
    "ip": ("primary_ip", "id"), "serial": ("serial", "id"), "model": ("model", "id"),
    "last_seen": ("last_seen_at", "id"), "updates": ("pending_updates", "id"),
    "warranty": ("warranty_end", "id"), "location": ("location", "id"),
}
# Only what the list shows; lifecycle text and notes stay on disk.
LIST_FIELDS = ("id", "name", "client__name", "site__name", "kind", "status", "os_name",
               "os_version", "primary_ip", "serial", "manufacturer", "model", "last_seen_at",
               "pending_updates", "reboot_required", "assigned_contact__name", "location",
               "warranty_end", "agent_ref", "client_id", "site_id")


TOKENS = {"is": "seen", "kind": "kind", "status": "status", "os": "os"}


@dataclass
class DeviceQuery:
    q: str = ""
    client: str = ""
    site: str = ""
    kind: str = ""
    status: str = ""
    os: str = ""
    seen: str = ""  # online | offline | never
    warranty: str = ""  # expired | soon (within 90 days) | none (no date)
    sort: str = "name"

    @classmethod
    def from_params(cls, params) -> DeviceQuery:
        query = cls(**{k: (params.get(k) or "").strip()[:200]
                       for k in cls.__dataclass_fields__})
        query.take_tokens()
        return query

    def take_tokens(self) -> None:
        """`is:offline kind:laptop status:retired os:windows` typed in the search box become
        filters; the rest of the text stays the search."""
        words = []
        for word in self.q.split():
            key, sep, value = word.partition(":")
            key = key.lower()
            if sep and value and key in TOKENS:
                setattr(self, TOKENS[key], value.lower() if key != "os" else value)
            else:
                words.append(word)
        self.q = " ".join(words)


def filter_devices(user, query: DeviceQuery, base: QuerySet | None = None) -> QuerySet:
    qs = scoped(base if base is not None else Device.objects.all(), user)
    # A value that cannot be an id matches nothing (like an id that does not exist).
    if query.client:
        qs = filter_by_id(qs, "client_id", query.client)
    if query.site:
        qs = filter_by_id(qs, "site_id", query.site)
    if query.kind:
        qs = qs.filter(kind=query.kind)
    if query.status:
        qs = qs.filter(status=query.status)
    if query.os:
        qs = qs.filter(os_name__icontains=query.os)
    cutoff = timezone.now() - ONLINE_WINDOW
    if query.seen == "online":
        qs = qs.filter(last_seen_at__gte=cutoff)
    elif query.seen == "offline":
        qs = qs.filter(last_seen_at__lt=cutoff)
    elif query.seen == "never":
        qs = qs.filter(last_seen_at__isnull=True)
    today = timezone.localdate()
    if query.warranty == "expired":
        qs = qs.filter(warranty_end__lt=today)
    elif query.warranty == "soon":
        qs = qs.filter(warranty_end__gte=today, warranty_end__lte=today + timedelta(days=90))
    elif query.warranty == "none":
        qs = qs.filter(warranty_end__isnull=True)
    if query.q:
        qs = qs.filter(search_q(query.q))
    desc = query.sort.startswith("-")
    order = SORTS.get(query.sort.lstrip("-"), SORTS["name"])
    return qs.order_by(*[f"-{f}" if desc else f for f in order])


def search_q(text: str) -> Q:
    """Name, hostname, serial, asset tag, an IP or a MAC of any interface."""
    cond = (Q(name__icontains=text) | Q(hostname__icontains=text)
            | Q(serial__iexact=text) | Q(serial__icontains=text)
            | Q(asset_tag__iexact=text) | Q(asset_tag__icontains=text))
    mac = normalise_mac(text)
    if mac:
        cond |= Q(primary_mac=mac) | Exists(
            NetworkAddress.objects.filter(device=OuterRef("pk"), mac=mac))
    if _looks_like_ip(text):
        cond |= Q(primary_ip=text) | Exists(
            NetworkAddress.objects.filter(device=OuterRef("pk"), address=text))
    return cond


def search_devices(user, text: str, limit: int = 10) -> list[dict[str, Any]]:
    """Devices matching `text` (name, hostname, serial, asset tag, any IP or MAC) in every
    tenant the
    user sees: for the global search, which should find serials, IPs and MACs."""
    text = text.strip()
    if len(text) < 2:
        return []
    rows = (scoped(Device.objects.filter(search_q(text)), user)
            .order_by("name", "id")
            .values("id", "name", "client_id", "client__name", "serial", "asset_tag",
                    "primary_ip")[:limit])
    return [{"type": "device", "id": r["id"], "name": r["name"], "client": r["client_id"],
             "client_name": r["client__name"],
             "detail": " ".join(filter(None, [r["asset_tag"], r["serial"], r["primary_ip"]])),
             "url": f"/devices/{r['id']}/"} for r in rows]


def _looks_like_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def device_rows(qs: QuerySet) -> QuerySet:
    return qs.values(*LIST_FIELDS)


def is_online(last_seen_at) -> bool:
    return bool(last_seen_at and last_seen_at >= timezone.now() - ONLINE_WINDOW)


# --- Licences ---------------------------------------------------------------------------

def with_seat_usage(licences: QuerySet) -> QuerySet:
    """Annotate `used`: devices of the licence's client with software whose name contains
    the licence's match text (one correlated subquery, not a query per licence)."""
    used = (SoftwareInstall.objects
            .filter(device__client_id=OuterRef("client_id"), name__icontains=OuterRef("match"))
            .order_by().values("device__client_id")
            .annotate(n=Count("device_id", distinct=True)).values("n"))
    return licences.annotate(used=Coalesce(Subquery(used), 0))


def licences_with_usage(user, client_id: int | None = None) -> list[dict[str, Any]]:
    licences = with_seat_usage(scoped(SoftwareLicence.objects.select_related("client"), user))
    if client_id:
        licences = licences.filter(client_id=client_id)
    return [{"licence": lic, "used": lic.used, "over": lic.used > lic.seats}
            for lic in licences]


# --- Reconciliation ---------------------------------------------------------------------

def devices_without_agent(user) -> QuerySet:
    return scoped(Device.objects.filter(agent_ref="").exclude(status="retired"), user
                  ).select_related("client", "site").order_by("client__name", "name")


def not_seen_since(user, days: int) -> QuerySet:
    cutoff = timezone.now() - timedelta(days=days)
    return scoped(Device.objects.filter(last_seen_at__lt=cutoff).exclude(status="retired"),
                  user).select_related("client").order_by("last_seen_at")


def duplicates(user) -> list[dict[str, Any]]:
    """Groups of visible devices sharing a serial or a MAC (within what the user sees)."""
    devices = scoped(Device.objects.all(), user)
    groups = []
    serials = (devices.exclude(serial="").values("serial").annotate(n=Count("id"))
               .filter(n__gt=1).values_list("serial", flat=True)[:200])
    for serial in serials:
        groups.append({"by": "serial", "value": serial,
                       "devices": list(devices.filter(serial=serial)
                                       .select_related("client"))})
    addrs = scoped(NetworkAddress.objects.exclude(mac=""), user)
    macs = (addrs.values("mac").annotate(n=Count("device_id", distinct=True))
            .filter(n__gt=1).values_list("mac", flat=True)[:200])
    for mac in macs:
        groups.append({"by": "MAC", "value": mac,
                       "devices": list(devices.filter(addresses__mac=mac).distinct()
                                       .select_related("client"))})
    return groups


def open_conflicts(user) -> QuerySet:
    return scoped(FieldConflict.objects.filter(status=ConflictStatus.OPEN), user
                  ).select_related("device", "device__client").order_by("device__name", "field")


def disagreeing_fields(user, limit: int = 500) -> list[dict[str, Any]]:
    """Fields for which two sources currently hold different values (from provenance)."""
    rows = scoped(FieldProvenance.objects.exclude(field__startswith="section:"), user)
    pairs = (rows.values("device_id", "field").annotate(n=Count("value", distinct=True))
             .filter(n__gt=1).order_by("device_id", "field")[:limit])
    wanted = {(p["device_id"], p["field"]) for p in pairs}
    if not wanted:
        return []
    detail = rows.filter(device_id__in={d for d, _ in wanted}).select_related(
        "device", "device__client").order_by("device__name", "field", "source_kind")
    grouped: dict[tuple[int, str], dict[str, Any]] = {}
    for row in detail:
        key = (row.device_id, row.field)
        if key in wanted:
            grouped.setdefault(key, {"device": row.device, "field": row.field,
                                     "values": []})["values"].append(row)
    return list(grouped.values())


def agents_without_device(user) -> list[Any]:
    """Agents the agents app knows that have no inventory record (if it exposes them):
    e.g. enrolled and waiting in quarantine."""
    from watchkeeper.core import hooks

    agent_selectors = hooks.first("agents.selectors")
    func = getattr(agent_selectors, "agents_without_device", None)
    return list(func(user)) if func else []


# --- Querysets for other apps ---------------------------------------------------------------
# Other apps never import inventory's models: they start from these (and filter, scope or
# use `.model` for a form field or a route's wk_model).

def all_devices() -> QuerySet:
    return Device.objects.all()


def all_device_sections() -> QuerySet:
    return DeviceSection.objects.all()
