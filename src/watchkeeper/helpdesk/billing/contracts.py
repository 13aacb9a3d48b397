"""Contracts of clients, and what they count.

Managed-services contracts bill per managed device or per user per month. Both counts come
from data other modules own, never typed in:
- devices: the inventory's own device list query (watchkeeper.inventory.selectors), status
  "deployed", of the contract's kinds; the count is what a technician sees with the device
  list filtered `status:deployed` for that client, at the moment the run is computed;
- users: the client's contacts flagged `is_user` (no identity app exists yet; when one
  does, its directory users replace this count).
Prepaid hour blocks burn down with billable time entries; time-and-materials contracts bill
time at their rate per work type.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet, Sum

from watchkeeper.core.actions import create_object, update_object
from watchkeeper.core.converters import parse_id
from watchkeeper.core.models import Client, Contact
from watchkeeper.core.tenancy import scoped
from watchkeeper.inventory.choices import DeviceKind, LifecycleStatus
from watchkeeper.inventory.selectors import DeviceQuery, device_rows, filter_devices

from ..time.models import TimeEntry, WorkType
from .choices import ContractKind
from .models import Contract

CONTRACT_FIELDS = {"name", "kind", "starts_on", "ends_on", "unit_price", "device_kinds",
                   "hours", "overage_rate", "rates", "is_active", "notes"}


def _validate(values: dict[str, Any]) -> dict[str, Any]:
    kind = values.get("kind")
    if kind not in ContractKind.values:
        raise ValidationError({"kind": "Choose a contract kind."})
    kinds = values.get("device_kinds") or []
    if not isinstance(kinds, list) or any(k not in DeviceKind.values for k in kinds):
        raise ValidationError({"device_kinds": "Unknown device kind."})
    values["device_kinds"] = sorted(set(kinds))
    rates = values.get("rates") or {}
    if not isinstance(rates, dict):
        raise ValidationError({"rates": "Give a rate per work type."})
    clean_rates = {}
    known = set(WorkType.objects.filter(pk__in=[parse_id(k) for k in rates
                                                if parse_id(k) is not None])
                .values_list("pk", flat=True))
    for key, rate in rates.items():
        if parse_id(key) is None or parse_id(key) not in known:
            raise ValidationError({"rates": f"Unknown work type {key!r}."})
        try:
            amount = Decimal(str(rate)).quantize(Decimal("0.01"))
        except ArithmeticError as exc:
            raise ValidationError({"rates": f"Invalid rate {rate!r}."}) from exc
        if amount < 0:
            raise ValidationError({"rates": "A rate cannot be negative."})
        clean_rates[str(int(key))] = str(amount)
    values["rates"] = clean_rates
    if kind in (ContractKind.PER_DEVICE, ContractKind.PER_USER) and \
            Decimal(str(values.get("unit_price") or 0)) <= 0:
        raise ValidationError({"unit_price": "Give the monthly price per device or user."})
    if kind == ContractKind.PREPAID and Decimal(str(values.get("hours") or 0)) <= 0:
        raise ValidationError({"hours": "Give the hours of the prepaid block."})
    return values


def create_contract(*, actor, client: Client, name: str, kind: str, starts_on: date,
                    **fields: Any) -> Contract:
    values = _validate({"name": name, "kind": kind, "starts_on": starts_on, **fields})
    return create_object(actor=actor, model=Contract, client=client, **values)


def update_contract(*, actor, contract: Contract, **fields: Any) -> Contract:
    unknown = set(fields) - CONTRACT_FIELDS
    if unknown:
        raise ValidationError(f"Cannot change: {', '.join(sorted(unknown))}")
    current = {k: getattr(contract, k) for k in CONTRACT_FIELDS}
    values = _validate({**current, **fields})
    return update_object(actor=actor, obj=contract,
                         **{k: values[k] for k in fields if k in values})


def active_in(qs: QuerySet, start: date, end: date) -> QuerySet:
    """Contracts in force on at least one day of [start, end]."""
    return qs.filter(is_active=True, starts_on__lte=end).filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=start))


# --- Counts -------------------------------------------------------------------------------

def counted_devices(actor, contract: Contract) -> list[dict[str, Any]]:
    """The managed devices a per-device contract bills: the inventory's device list for the
    client, status deployed, of the contract's kinds (all kinds when none are named)."""
    query = DeviceQuery(client=str(contract.client_id), status=LifecycleStatus.DEPLOYED,
                        sort="name")
    rows = device_rows(filter_devices(actor, query))
    kinds = set(contract.device_kinds or [])
    return [{"id": r["id"], "name": r["name"], "kind": r["kind"], "serial": r["serial"],
             "site": r["site__name"], "last_seen_at": r["last_seen_at"].isoformat()
             if r["last_seen_at"] else None}
            for r in rows if not kinds or r["kind"] in kinds]


def counted_users(actor, contract: Contract) -> list[dict[str, Any]]:
    """The users a per-user contract bills: the client's contacts flagged as users."""
    rows = (scoped(Contact.objects.filter(client_id=contract.client_id, is_user=True), actor)
            .order_by("name", "id").values("id", "name", "email"))
    return list(rows)


def prepaid_used_minutes(contract: Contract, *, before: date | None = None) -> int:
    """Billable minutes of the client since the block started (dated before `before`)."""
    qs = TimeEntry.objects.filter(ticket__client_id=contract.client_id, billable=True,
                                  date__gte=contract.starts_on)
    if contract.ends_on:
        qs = qs.filter(date__lte=contract.ends_on)
    if before is not None:
        qs = qs.filter(date__lt=before)
    return qs.aggregate(total=Sum("minutes"))["total"] or 0


def burn_down(contract: Contract) -> dict[str, Any]:
    """Hours of a prepaid block: bought, used, remaining (never below zero), beyond."""
    used = Decimal(prepaid_used_minutes(contract)) / 60
    hours = contract.hours
    return {"hours": hours, "used": used.quantize(Decimal("0.01")),
            "remaining": max(hours - used, Decimal(0)).quantize(Decimal("0.01")),
            "overage": max(used - hours, Decimal(0)).quantize(Decimal("0.01")),
            "percent_used": int(min(used / hours * 100, Decimal(100))) if hours else 0}


def rate_for(entry: TimeEntry, contract: Contract | None) -> Decimal:
    """The hourly rate of a time entry: its own, the contract's for its work type, else the
    work type's default."""
    if entry.rate is not None:
        return entry.rate
    if contract is not None and str(entry.work_type_id) in (contract.rates or {}):
        return Decimal(contract.rates[str(entry.work_type_id)])
    return entry.work_type.default_rate
