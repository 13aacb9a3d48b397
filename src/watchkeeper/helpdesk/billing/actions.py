"""Billing runs: per period (a calendar month), invoice lines per client with their evidence,
exported as CSV and JSON for accounting tools, locked once approved.

What a run bills, per client:
- each managed-services contract in force during the month: one line, a full month at its
  unit price times the devices (or users) counted when the run is computed (see contracts);
  the evidence lists each device (id, name, kind, serial, site) or user;
- billable time not billed before and dated up to the period's last day (so time logged
  late for an earlier month is not lost): first against a prepaid block in force (hours used,
  the remainder after this run, and the hours beyond the block at its overage rate), then at
  the time-and-materials contract's rates; time of a client with neither is billed at the
  entry's or work type's rate as uncontracted time. Each line lists its time entries.

A draft run can be recomputed; approving it locks it and the time entries it billed, and
supersedes an earlier approved run of the same period (whose lines stay, as they were).
"""

from __future__ import annotations

import csv
import io
import json
from calendar import monthrange
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from watchkeeper.core import audit, events
from watchkeeper.core.choices import AuditAction
from watchkeeper.core.csvsafe import safe_cell
from watchkeeper.core.models import Client

from ..time.models import TimeEntry
from . import contracts
from . import events as ev
from .choices import ContractKind, LineKind, RunStatus
from .models import BillingLine, BillingRun, Contract

CENT = Decimal("0.01")


def money(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / 60).quantize(CENT, rounding=ROUND_HALF_UP)


def month_bounds(period: str | date) -> tuple[date, date]:
    """'2025-07' (or any date in it) -> (2025-07-01, 2025-07-31)."""
    if isinstance(period, str):
        try:
            year, month = (int(p) for p in period.split("-")[:2])
            first = date(year, month, 1)
        except (ValueError, TypeError) as exc:
            raise ValidationError({"period": "Use YYYY-MM."}) from exc
    else:
        first = period.replace(day=1)
    return first, first.replace(day=monthrange(first.year, first.month)[1])


# --- Computing lines ------------------------------------------------------------------------

def _entry_evidence(entry: TimeEntry, minutes: int | None = None) -> dict[str, Any]:
    return {"id": entry.pk, "ticket": entry.ticket_id, "reference": entry.ticket.reference,
            "date": entry.date.isoformat(), "minutes": minutes or entry.minutes,
            "technician": entry.technician.email, "work_type": entry.work_type.name,
            "note": entry.note[:200]}


def billable_entries(run: BillingRun) -> list[TimeEntry]:
    """Billable time not billed by another period's run, dated up to the period end."""
    return list(
        TimeEntry.objects.filter(billable=True, date__lte=run.period_end,
                                 ticket__client__isnull=False)
        .filter(Q(billed_run__isnull=True) | Q(billed_run__period_start=run.period_start))
        .select_related("ticket", "technician", "work_type")
        .order_by("date", "id"))


def _prior_prepaid_minutes(contract: Contract, run: BillingRun) -> int:
    """Minutes of the block already billed by approved runs of other periods."""
    total = 0
    qs = TimeEntry.objects.filter(ticket__client_id=contract.client_id, billable=True,
                                  billed_run__isnull=False, date__gte=contract.starts_on) \
        .exclude(billed_run__period_start=run.period_start)
    for minutes in qs.values_list("minutes", flat=True):
        total += minutes
    return total


def compute_lines(actor, run: BillingRun) -> list[BillingLine]:
    """The lines of every client for the run's period (not saved)."""
    lines: list[BillingLine] = []
    in_force = contracts.active_in(Contract.objects.all(), run.period_start, run.period_end) \
        .select_related("client").order_by("client__name", "starts_on", "id")
    by_client: dict[int, list[Contract]] = defaultdict(list)
    for contract in in_force:
        by_client[contract.client_id].append(contract)
    entries_by_client: dict[int, list[TimeEntry]] = defaultdict(list)
    for entry in billable_entries(run):
        entries_by_client[entry.ticket.client_id].append(entry)
    client_ids = sorted(set(by_client) | set(entries_by_client))
    clients = {c.pk: c for c in Client.objects.filter(pk__in=client_ids)}
    for client_id in sorted(client_ids, key=lambda i: (clients[i].name, i)):
        client = clients[client_id]
        position = 0

        def add(kind, description, quantity, unit_price, evidence, contract=None,
                amount=None, _client=client):
            nonlocal position
            position += 1
            lines.append(BillingLine(
                run=run, client=_client, contract=contract, kind=kind,
                description=description[:300], quantity=Decimal(quantity).quantize(CENT),
                unit_price=money(unit_price),
                amount=money(amount if amount is not None else Decimal(quantity) * unit_price),
                evidence=evidence, position=position))

        client_contracts = by_client.get(client_id, [])
        for contract in client_contracts:
            if contract.kind == ContractKind.PER_DEVICE:
                devices = contracts.counted_devices(actor, contract)
                add(LineKind.DEVICES, f"{contract.name}: {len(devices)} managed devices, "
                    f"{run.period_start:%B %Y}", len(devices), contract.unit_price,
                    {"rule": "inventory devices with status deployed when computed",
                     "kinds": contract.device_kinds, "devices": devices}, contract)
            elif contract.kind == ContractKind.PER_USER:
                users = contracts.counted_users(actor, contract)
                add(LineKind.USERS, f"{contract.name}: {len(users)} users, "
                    f"{run.period_start:%B %Y}", len(users), contract.unit_price,
                    {"rule": "client contacts flagged as users when computed",
                     "users": users}, contract)
        remaining = _time_lines(run, add, client_contracts,
                                entries_by_client.get(client_id, []))
        if remaining:
            _time_and_materials(add, None, remaining, "Uncontracted time")
    return lines


def _time_lines(run, add, client_contracts, entries) -> list[TimeEntry]:
    """Prepaid block first, then time and materials; returns entries no contract took."""
    entries = list(entries)
    prepaid = next((c for c in client_contracts if c.kind == ContractKind.PREPAID), None)
    if prepaid is not None and entries:
        in_block = [e for e in entries if e.date >= prepaid.starts_on
                    and (prepaid.ends_on is None or e.date <= prepaid.ends_on)]
        entries = [e for e in entries if e not in in_block]
        block_minutes = int(prepaid.hours * 60)
        used_before = _prior_prepaid_minutes(prepaid, run)
        left = max(block_minutes - used_before, 0)
        used, beyond = [], []
        used_minutes = beyond_minutes = 0
        for entry in in_block:
            take = min(entry.minutes, left)
            left -= take
            if take:
                used.append(_entry_evidence(entry, take))
                used_minutes += take
            if entry.minutes - take:
                beyond.append(_entry_evidence(entry, entry.minutes - take))
                beyond_minutes += entry.minutes - take
        if used or beyond:
            add(LineKind.PREPAID_USED,
                f"{prepaid.name}: {hours(used_minutes)} h used, "
                f"{hours(left)} h of {prepaid.hours} h remaining",
                hours(used_minutes), Decimal(0),
                {"block_hours": str(prepaid.hours), "used_before_hours":
                 str(hours(used_before)), "remaining_hours": str(hours(left)),
                 "time_entries": used}, prepaid, amount=Decimal(0))
        if beyond:
            add(LineKind.PREPAID_OVERAGE, f"{prepaid.name}: {hours(beyond_minutes)} h beyond "
                f"the block", hours(beyond_minutes), prepaid.overage_rate,
                {"time_entries": beyond}, prepaid,
                amount=Decimal(beyond_minutes) / 60 * prepaid.overage_rate)
    tm = next((c for c in client_contracts if c.kind == ContractKind.TIME_MATERIALS), None)
    if tm is not None and entries:
        _time_and_materials(add, tm, entries, tm.name)
        return []
    return entries


def _time_and_materials(add, contract, entries, label) -> None:
    """One line per work type and rate."""
    groups: dict[tuple[str, Decimal], list[TimeEntry]] = defaultdict(list)
    for entry in entries:
        groups[(entry.work_type.name, contracts.rate_for(entry, contract))].append(entry)
    for (work_type, rate), group in sorted(groups.items()):
        minutes = sum(e.minutes for e in group)
        add(LineKind.TIME, f"{label}: {work_type}, {hours(minutes)} h at {money(rate)}",
            hours(minutes), rate, {"time_entries": [_entry_evidence(e) for e in group]},
            contract, amount=Decimal(minutes) / 60 * rate)


# --- Actions ----------------------------------------------------------------------------------

def _check_actor(actor) -> None:
    """Counts come from scoped reads: an actor who does not see every client would bill
    fewer devices and users than exist, so only such an actor may compute a run."""
    from watchkeeper.core.tenancy import visible_client_ids

    if actor is None or visible_client_ids(actor) is not None:
        raise ValidationError("Billing runs are computed by someone who sees every client.")


def _signature(lines) -> list[tuple]:
    """What a reviewer saw: per line its client, contract, amounts and evidence."""
    return sorted((line.client_id, line.contract_id or 0, line.kind, line.description,
                   str(line.quantity), str(line.unit_price), str(line.amount),
                   _evidence_ids(line)) for line in lines)


def _fill(actor, run: BillingRun) -> None:
    lines = compute_lines(actor, run)
    BillingLine.objects.filter(run=run).delete()
    BillingLine.objects.bulk_create(lines)
    run.total = money(sum((line.amount for line in lines), Decimal(0)))
    run.computed_at = timezone.now()
    run.save(update_fields=["total", "computed_at"])


def create_run(*, actor, period: str | date) -> BillingRun:
    """A draft run of the period, computed now. An approved run of the period is kept and
    named as the one this run would supersede."""
    _check_actor(actor)
    start, end = month_bounds(period)
    if start > timezone.localdate():
        raise ValidationError({"period": "That month has not started yet."})
    with transaction.atomic():
        if BillingRun.objects.filter(period_start=start, status=RunStatus.DRAFT).exists():
            raise ValidationError({"period": "A draft run of this month exists: recompute "
                                             "or approve it."})
        approved = BillingRun.objects.filter(period_start=start,
                                             status=RunStatus.APPROVED).first()
        run = BillingRun.objects.create(
            period_start=start, period_end=end, supersedes=approved,
            created_by=actor if getattr(actor, "is_authenticated", False) else None)
        _fill(actor, run)
        audit.record(actor=actor, action=AuditAction.CREATE, obj=run,
                     changes={"period": [None, f"{start:%Y-%m}"], "total": [None, str(run.total)],
                              "lines": [None, run.lines.count()]})
        events.emit(ev.BillingRunCreated.of(run))
    return run


def _lock(run_id: int) -> BillingRun:
    run = BillingRun.objects.select_for_update().get(pk=run_id)
    if run.status != RunStatus.DRAFT:
        raise ValidationError("This billing run is approved or superseded: it is locked.")
    return run


def recompute_run(*, actor, run: BillingRun) -> BillingRun:
    _check_actor(actor)
    with transaction.atomic():
        run = _lock(run.pk)
        before = str(run.total)
        _fill(actor, run)
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=run,
                     changes={"total": [before, str(run.total)]})
        events.emit(ev.BillingRunChanged.of(run))
    return run


def approve_run(*, actor, run: BillingRun) -> BillingRun:
    """Lock the run and the time entries it billed; supersede the period's earlier run.

    Refused when the data changed since the run was computed (time logged or edited, a
    device deployed or retired): what is approved is exactly what was reviewed."""
    _check_actor(actor)
    with transaction.atomic():
        run = _lock(run.pk)
        if _signature(compute_lines(actor, run)) != _signature(run.lines.all()):
            raise ValidationError("The data changed since this run was computed: "
                                  "recompute it and review the lines again.")
        previous = BillingRun.objects.select_for_update().filter(
            period_start=run.period_start, status=RunStatus.APPROVED).first()
        if previous is not None:
            BillingRun.objects.filter(pk=previous.pk).update(status=RunStatus.SUPERSEDED)
            audit.record(actor=actor, action=AuditAction.UPDATE, obj=previous,
                         changes={"status": [RunStatus.APPROVED, RunStatus.SUPERSEDED],
                                  "superseded_by": [None, run.pk]})
        entry_ids = sorted({e["id"] for line in run.lines.all()
                            for e in line.evidence.get("time_entries", [])})
        # Entries the superseded run billed but this one does not are free again.
        TimeEntry.objects.filter(billed_run__period_start=run.period_start) \
            .exclude(pk__in=entry_ids).update(billed_run=None)
        TimeEntry.objects.filter(pk__in=entry_ids).update(billed_run=run)
        run.status, run.approved_at = RunStatus.APPROVED, timezone.now()
        run.approved_by = actor if getattr(actor, "is_authenticated", False) else None
        run.save(update_fields=["status", "approved_at", "approved_by"])
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=run,
                     changes={"status": [RunStatus.DRAFT, RunStatus.APPROVED],
                              "time_entries_locked": [None, len(entry_ids)]})
        events.emit(ev.BillingRunApproved.of(run))
    return run


def delete_run(*, actor, run: BillingRun) -> None:
    with transaction.atomic():
        run = _lock(run.pk)
        audit.record(actor=actor, action=AuditAction.DELETE, obj=run,
                     changes={"period": [f"{run.period_start:%Y-%m}", None]})
        pk = run.pk
        run.delete()
        events.emit(ev.BillingRunDeleted(id=pk))


# --- Export -----------------------------------------------------------------------------------

CSV_COLUMNS = ["run", "period", "status", "client_id", "client", "contract_id", "contract",
               "line", "kind", "description", "quantity", "unit_price", "amount",
               "evidence_ids"]


def _evidence_ids(line: BillingLine) -> str:
    ev = line.evidence or {}
    if "devices" in ev:
        return " ".join(f"device:{d['id']}" for d in ev["devices"])
    if "users" in ev:
        return " ".join(f"contact:{u['id']}" for u in ev["users"])
    return " ".join(f"time:{e['id']}" for e in ev.get("time_entries", []))


def export_rows(run: BillingRun, lines) -> list[dict[str, Any]]:
    rows = []
    for line in lines:
        rows.append({
            "run": run.pk, "period": f"{run.period_start:%Y-%m}", "status": run.status,
            "client_id": line.client_id, "client": line.client.name,
            "contract_id": line.contract_id, "contract": line.contract.name
            if line.contract_id else "", "line": line.pk, "kind": line.kind,
            "description": line.description, "quantity": str(line.quantity),
            "unit_price": str(line.unit_price), "amount": str(line.amount),
            "evidence_ids": _evidence_ids(line)})
    return rows


def export_csv(run: BillingRun, lines) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for row in export_rows(run, lines):
        writer.writerow({k: safe_cell(v) for k, v in row.items()})
    return out.getvalue()


def export_json(run: BillingRun, lines) -> str:
    lines = list(lines)
    body = {
        "run": run.pk, "period": f"{run.period_start:%Y-%m}",
        "period_start": run.period_start.isoformat(), "period_end": run.period_end.isoformat(),
        "status": run.status, "approved_at": run.approved_at.isoformat()
        if run.approved_at else None,
        "total": str(money(sum((line.amount for line in lines), Decimal(0)))),
        "lines": [{**row, "evidence": line.evidence}
                  for row, line in zip(export_rows(run, lines), lines, strict=True)],
    }
    return json.dumps(body, indent=2, default=str)
