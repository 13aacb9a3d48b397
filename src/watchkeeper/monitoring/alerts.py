"""The alert state machine: every check result, agent-side or server-side, enters here.

`record_results(results)` applies, per (check, device):
- consecutive-reading thresholds: a new state counts only after `fail_after` (or, back to
  ok, `recover_after`) readings in a row;
- flap detection: FLAP_START state changes inside FLAP_WINDOW mark the pair flapping; while
  it flaps its alert stays open (no resolve / re-open churn, no notifications), and it stops
  flapping when fewer than FLAP_STOP changes remain in the window;
- deduplication: one open alert per condition key, guarded by a partial unique constraint;
  a repeat is one UPDATE ... SET count = count + 1 for the whole batch, never a
  read-then-write;
- events alert.opened / alert.changed / alert.resolved in the same transaction.

A batch is one transaction: the state rows it touches are locked in primary-key order, so
two evaluators writing the same pair serialise instead of losing an update.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from watchkeeper.core import events

from . import events as ev
from .choices import OPEN_STATUSES, STATE_RANK, AlertStatus, State, Suppression
from .models import Alert, Check, CheckState

FLAP_WINDOW = timedelta(minutes=30)
FLAP_START = 5
FLAP_STOP = 2
BATCH = 1000


@dataclass
class CheckResult:
    """One reading of one check. `device_id` is None for a check of its own target."""

    check_id: int
    device_id: int | None
    client_id: int | None
    state: str
    value: float | None = None
    message: str = ""
    observed_at: datetime | None = None
    output: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def alert_key(check_id: int, device_id: int | None) -> str:
    return f"c{check_id}:d{device_id or 0}"


@dataclass
class _Change:
    """What one pair's batch of readings did to its alert."""

    kind: str  # open | severity | resolve | flap | repeat
    state: CheckState
    check: dict
    result: CheckResult
    repeats: int = 0
    # Per batch: which clients have any dependency relation / maintenance window at all,
    # so the common case (none) costs no lookup per opened alert.
    hints: dict = field(default_factory=dict)


def record_results(results: list[CheckResult], now: datetime | None = None) -> dict[str, int]:
    """Apply `results` (any order, any mix of checks); returns counters of what happened."""
    now = now or timezone.now()
    totals: dict[str, int] = defaultdict(int)
    for start in range(0, len(results), BATCH):
        for key, n in _record_batch(results[start:start + BATCH], now).items():
            totals[key] += n
    return dict(totals)


def _record_batch(results: list[CheckResult], now: datetime) -> dict[str, int]:
    by_pair: dict[tuple[int, int], list[CheckResult]] = defaultdict(list)
    for r in results:
        if r.state not in State.values:
            raise ValueError(f"unknown state {r.state!r} for check {r.check_id}")
        by_pair[(r.check_id, r.device_id or 0)].append(r)
    for readings in by_pair.values():
        readings.sort(key=lambda r: r.observed_at or now)
    check_ids = sorted({c for c, _ in by_pair})
    counters: dict[str, int] = defaultdict(int)
    with transaction.atomic():
        checks = {c["id"]: c for c in Check.objects.filter(pk__in=check_ids).values(
            "id", "name", "fail_after", "recover_after", "policy_id",
            "policy__escalate_after_minutes", "policy__ticket_severities",
            "policy__ticket_resolve_on_recovery")}
        existing = _lock_states(check_ids, by_pair)
        missing = [pair for pair in by_pair if pair not in existing and pair[0] in checks]
        if missing:
            # First reading of these pairs: create their rows (a concurrent writer may be
            # creating the same ones; ON CONFLICT DO NOTHING waits for it and skips), then
            # lock and read them like the others.
            CheckState.objects.bulk_create(
                [CheckState(check_template_id=c, device_id=by_pair[(c, d)][0].device_id,
                            device_key=d, client_id=by_pair[(c, d)][0].client_id,
                            state=State.OK) for c, d in missing], ignore_conflicts=True)
            existing.update(_lock_states(sorted({c for c, _ in missing}),
                                         {p: None for p in missing}))
        changed_states, changes = [], []
        for pair, readings in by_pair.items():
            check = checks.get(pair[0])
            if check is None:
                counters["unknown_check"] += len(readings)
                continue
            state = existing[pair]
            changed_states.append(state)
            change = _advance(state, readings, check, now)
            counters["results"] += len(readings)
            if change is not None:
                changes.append(change)
        if changed_states:
            _update_states(changed_states)
        _apply_alert_changes(changes, now, counters)
    return counters


def _lock_states(check_ids: list[int], pairs) -> dict[tuple[int, int], CheckState]:
    """Lock (primary-key order) and read the state rows of `pairs`."""
    rows = (CheckState.objects.select_for_update()
            .filter(check_template_id__in=check_ids,
                    device_key__in=sorted({d for _, d in pairs})).order_by("pk"))
    return {(s.check_template_id, s.device_key): s for s in rows
            if (s.check_template_id, s.device_key) in pairs}


# Columns written back per state row, with the PostgreSQL type each VALUES column is cast
# to (a column of NULLs would otherwise be text).
_STATE_COLUMNS = [("state", "varchar"), ("pending_state", "varchar"),
                  ("pending_count", "integer"), ("value", "double precision"),
                  ("message", "varchar"), ("output", "text"),
                  ("observed_at", "timestamptz"), ("changed_at", "timestamptz"),
                  ("recent_changes", "jsonb"), ("is_flapping", "boolean"),
                  ("client_id", "bigint")]
UPDATE_CHUNK = 500


def _update_states(states: list[CheckState]) -> None:
    """Write the rows back with one `UPDATE ... FROM (VALUES ...)` per chunk: Django's
    bulk_update builds a CASE per column with a branch per row, which costs quadratic time
    in the chunk size (it dominated the evaluation benchmark). SQLite (3.33+) and
    PostgreSQL both name VALUES columns column1..N."""
    ops = connection.ops
    pg = connection.vendor == "postgresql"
    table = ops.quote_name(CheckState._meta.db_table)
    sets = ", ".join(
        f"{ops.quote_name(col)} = " + (f"CAST(v.column{i + 2} AS {pgtype})" if pg
                                       else f"v.column{i + 2}")
        for i, (col, pgtype) in enumerate(_STATE_COLUMNS))
    with connection.cursor() as cursor:
        for start in range(0, len(states), UPDATE_CHUNK):
            chunk = states[start:start + UPDATE_CHUNK]
            params: list[Any] = []
            for s in chunk:
                params += [s.pk, s.state, s.pending_state, s.pending_count, s.value,
                           s.message, s.output, ops.adapt_datetimefield_value(s.observed_at),
                           ops.adapt_datetimefield_value(s.changed_at),
                           json.dumps(s.recent_changes or []), s.is_flapping, s.client_id]
            row = "(" + ", ".join(["%s"] * (len(_STATE_COLUMNS) + 1)) + ")"
            cursor.execute(
                f"UPDATE {table} SET {sets} FROM (VALUES {', '.join([row] * len(chunk))}) "  # noqa: S608
                f"AS v WHERE {table}.id = " + ("CAST(v.column1 AS bigint)" if pg
                                               else "v.column1"),
                params)


def _advance(state: CheckState, readings: list[CheckResult], check: dict,
             now: datetime) -> _Change | None:
    """Run the readings through the pair's state machine (in memory); return the net
    effect on its alert."""
    start_state, start_flapping = state.state, state.is_flapping
    repeats = 0
    last = readings[-1]
    for r in readings:
        at = r.observed_at or now
        if r.state == state.state:
            state.pending_state, state.pending_count = "", 0
            if r.state != State.OK:
                repeats += 1
        else:
            if r.state == state.pending_state:
                state.pending_count += 1
            else:
                state.pending_state, state.pending_count = r.state, 1
            needed = check["recover_after"] if r.state == State.OK else check["fail_after"]
            if state.pending_count >= max(needed, 1):
                state.state = r.state
                state.pending_state, state.pending_count = "", 0
                state.changed_at = at
                state.recent_changes = (list(state.recent_changes or []) + [at.isoformat()])
        state.value, state.message = r.value, (r.message or "")[:500]
        if r.output:
            state.output = r.output[-65536:]
        state.observed_at = at
        if r.client_id is not None:
            state.client_id = r.client_id
    cutoff = now - FLAP_WINDOW
    recent = [t for t in state.recent_changes or []
              if datetime.fromisoformat(t) >= cutoff]
    state.recent_changes = recent[-20:]
    if state.is_flapping:
        state.is_flapping = len(recent) >= FLAP_STOP
    else:
        state.is_flapping = len(recent) >= FLAP_START

    old, new = start_state, state.state
    if state.is_flapping and not start_flapping:
        return _Change("flap", state, check, last)
    if state.is_flapping:
        # Keep the alert open and quiet (opened once if flapping began on a recovery).
        return _Change("flapping", state, check, last, repeats=len(readings)) \
            if new != State.OK or old != State.OK else None
    if start_flapping and not state.is_flapping:
        return _Change("resolve" if new == State.OK else "severity", state, check, last)
    if new != old:
        if new == State.OK:
            return _Change("resolve", state, check, last)
        if old == State.OK:
            return _Change("open", state, check, last, repeats=max(repeats - 1, 0))
        return _Change("severity", state, check, last)
    if new != State.OK and repeats:
        return _Change("repeat", state, check, last, repeats=repeats)
    return None


def _event(cls: type[ev.AlertEvent], alert: Alert, check: dict, **extra: Any):
    """The alert event of `cls`, with the policy values the batch already read."""
    return cls.of(alert, ticket_severities=check.get("policy__ticket_severities") or [],
                  resolve_on_recovery=bool(check.get("policy__ticket_resolve_on_recovery")),
                  **extra)


def _apply_alert_changes(changes: list[_Change], now: datetime,
                         counters: dict[str, int]) -> None:
    if not changes:
        return
    # Repeats of every pair in the batch: one UPDATE per distinct repeat count (almost
    # always one), straight on the open row picked by the unique key.
    by_count: dict[int, list[str]] = defaultdict(list)
    for ch in changes:
        if ch.kind == "repeat":
            by_count[ch.repeats].append(alert_key(ch.state.check_template_id,
                                                  ch.state.device_id))
    for n, keys in by_count.items():
        counters["repeats"] += Alert.objects.filter(key__in=keys, status__in=OPEN_STATUSES) \
            .update(count=F("count") + n, last_seen_at=now)
    others = [ch for ch in changes if ch.kind != "repeat"]
    if not others:
        return
    from watchkeeper.inventory.relations.selectors import clients_with_relations

    from .models import MaintenanceWindow

    clients = {ch.state.client_id for ch in others if ch.kind in ("open", "flap")}
    hints = {"relations": set(), "windows": set()}
    if clients:
        hints["relations"] = clients_with_relations(clients)
        hints["windows"] = set(MaintenanceWindow.objects.filter(client_id__in=clients)
                               .values_list("client_id", flat=True).distinct())
    for ch in others:
        ch.hints = hints
    keys = [alert_key(ch.state.check_template_id, ch.state.device_id) for ch in others]
    open_alerts = {a.key: a for a in Alert.objects.select_for_update()
                   .filter(key__in=keys, status__in=OPEN_STATUSES).order_by("pk")}
    for ch, key in zip(others, keys, strict=True):
        alert = open_alerts.get(key)
        handler = _HANDLERS[ch.kind]
        handler(ch, key, alert, now, counters)


def _summary(ch: _Change) -> str:
    r = ch.result
    return (r.message or f"{ch.check['name']} is {ch.state.state}")[:500]


def _open(ch: _Change, key: str, alert: Alert | None, now: datetime,
          counters: dict[str, int]) -> None:
    if alert is not None:
        # Still open (flapped back, or resolved state was reset by hand): count it.
        _change_severity(ch, key, alert, now, counters)
        return
    from . import dependencies, maintenance

    state = ch.state
    minutes = ch.check.get("policy__escalate_after_minutes")
    alert = Alert(key=key, client_id=state.client_id, device_id=state.device_id,
                  check_template_id=state.check_template_id, check_name=ch.check["name"],
                  severity=state.state, summary=_summary(ch), count=1 + ch.repeats,
                  opened_at=now, last_seen_at=now,
                  escalate_at=now + timedelta(minutes=minutes) if minutes else None)
    hints = ch.hints or {}
    related = state.client_id in hints.get("relations", {state.client_id})
    parent = dependencies.parent_alert(state.client_id, state.device_id) if related else None
    if parent is not None:
        alert.parent, alert.suppressed = parent, Suppression.DEPENDENCY
    elif state.client_id in hints.get("windows", {state.client_id}) and \
            maintenance.in_maintenance(state.client_id, state.device_id, now):
        alert.suppressed = Suppression.MAINTENANCE
    try:
        with transaction.atomic():
            alert.save(force_insert=True)
    except IntegrityError:
        # Another writer opened this condition's alert between our read and insert.
        Alert.objects.filter(key=key, status__in=OPEN_STATUSES).update(
            count=F("count") + 1, last_seen_at=now)
        counters["repeats"] += 1
        return
    if related:
        dependencies.adopt_children(alert)
    counters["opened"] += 1
    events.emit(_event(ev.AlertOpened, alert, ch.check), client=alert.client_id)


def _change_severity(ch: _Change, key: str, alert: Alert | None, now: datetime,
                     counters: dict[str, int]) -> None:
    if alert is None:
        if ch.state.state != State.OK:
            _open(ch, key, None, now, counters)
        return
    old = alert.severity
    alert.severity = ch.state.state if ch.state.state != State.OK else alert.severity
    alert.summary, alert.count, alert.last_seen_at = _summary(ch), alert.count + 1, now
    alert.is_flapping = ch.state.is_flapping
    if alert.suppressed == Suppression.FLAPPING and not alert.is_flapping:
        alert.suppressed = Suppression.NONE
    alert.save(update_fields=["severity", "summary", "count", "last_seen_at", "is_flapping",
                              "suppressed"])
    counters["changed"] += 1
    events.emit(_event(ev.AlertChanged, alert, ch.check, change="severity",
                       previous_severity=old,
                       worse=STATE_RANK[alert.severity] > STATE_RANK[old]),
                client=alert.client_id)


def _resolve(ch: _Change, key: str, alert: Alert | None, now: datetime,
             counters: dict[str, int]) -> None:
    if alert is None:
        return
    alert.status, alert.resolved_at, alert.escalate_at = AlertStatus.RESOLVED, now, None
    alert.is_flapping = False
    alert.save(update_fields=["status", "resolved_at", "escalate_at", "is_flapping"])
    counters["resolved"] += 1
    events.emit(_event(ev.AlertResolved, alert, ch.check, recovered=True,
                       recovery_summary=_summary(ch)), client=alert.client_id)


def _flap(ch: _Change, key: str, alert: Alert | None, now: datetime,
          counters: dict[str, int]) -> None:
    if alert is None:
        if ch.state.state == State.OK:
            return
        _open(ch, key, None, now, counters)
        alert = Alert.objects.filter(key=key, status__in=OPEN_STATUSES).first()
        if alert is None:
            return
    Alert.objects.filter(pk=alert.pk).update(is_flapping=True,
                                             suppressed=alert.suppressed or "flapping",
                                             last_seen_at=now, count=F("count") + 1)
    alert.refresh_from_db()
    counters["flapping"] += 1
    events.emit(_event(ev.AlertChanged, alert, ch.check, change="flapping"),
                client=alert.client_id)


def _flapping(ch: _Change, key: str, alert: Alert | None, now: datetime,
              counters: dict[str, int]) -> None:
    """Still flapping: count on the open alert without an event; if flapping began on a
    recovery (its alert resolved) and the check is failing now, open it once, flapping."""
    if alert is None:
        if ch.state.state != State.OK:
            _flap(ch, key, None, now, counters)
        return
    Alert.objects.filter(pk=alert.pk).update(count=F("count") + ch.repeats, last_seen_at=now)
    counters["repeats"] += 1


_HANDLERS = {"open": _open, "severity": _change_severity, "resolve": _resolve, "flap": _flap,
             "flapping": _flapping}
