"""SLA clocks: first-response and resolution targets measured on the client's business
calendar, paused while the ticket waits on the client.

`recompute_ticket()` derives each clock of a ticket from the ticket and its status history
(TicketStatusChange rows) and stores its due and warning instants; it runs from the outbox
handler on ticket.created / ticket.changed and is idempotent (the same history gives the
same clock). The periodic sweep finds due warnings and breaches with one indexed query each
and claims each with a conditional UPDATE, so a warning or breach is announced once however
many schedulers or workers run it at the same time.

Which policy applies: the current policy of the client's active contract, else the client's
own, else the default. A clock keeps the policy version it started with while that scope
still applies, so editing a policy changes new tickets, not running promises.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from watchkeeper.core import audit, events
from watchkeeper.core.choices import AuditAction

from ..billing.models import Contract
from ..choices import PAUSED_STATUSES, Priority, Status
from ..models import Ticket
from . import calendars
from . import events as ev
from .choices import ClockState, Metric
from .models import SlaClock, SlaPolicy

log = logging.getLogger(__name__)

DONE_STATUSES = frozenset({Status.RESOLVED, Status.CLOSED})
SWEEP_LIMIT = 1000


# --- Policies ---------------------------------------------------------------------------

def scope_of(*, client=None, contract=None) -> str:
    if contract is not None:
        return f"contract:{contract.pk}"
    if client is not None:
        return f"client:{client.pk}"
    return "default"


def validate_targets(targets: Any) -> dict[str, dict[str, int]]:
    """{"p1": {"first_response": 30, "resolution": 240}, ...}: business minutes > 0."""
    if not isinstance(targets, dict):
        raise ValidationError({"targets": "Give targets per priority."})
    clean: dict[str, dict[str, int]] = {}
    for priority, metrics in targets.items():
        if priority not in Priority.values:
            raise ValidationError({"targets": f"Unknown priority {priority!r}."})
        if not isinstance(metrics, dict):
            raise ValidationError({"targets": f"Give minutes per metric for {priority}."})
        row = {}
        for metric, minutes in metrics.items():
            if metric not in Metric.values:
                raise ValidationError({"targets": f"Unknown metric {metric!r}."})
            if minutes in (None, ""):
                continue
            try:
                value = int(minutes)
            except (TypeError, ValueError) as exc:
                raise ValidationError({"targets": f"{priority} {metric}: whole minutes."}) \
                    from exc
            if value <= 0:
                raise ValidationError({"targets": f"{priority} {metric}: more than 0."})
            row[metric] = value
        if row:
            clean[priority] = row
    if not clean:
        raise ValidationError({"targets": "Give at least one target."})
    return clean


def save_policy(*, actor, name: str, targets: dict, client=None, contract=None,
                warning_percent: int = 75, escalate_to=None) -> SlaPolicy:
    """Write a new version of the policy of a scope (default, a client, or a contract); the
    previous version stops being current but stays, as the clocks that used it name it."""
    if contract is not None:
        client = contract.client
    targets = validate_targets(targets)
    scope = scope_of(client=client if contract is None else None, contract=contract)
    with transaction.atomic():
        previous = (SlaPolicy.objects.select_for_update().filter(scope=scope)
                    .order_by("-version").first())
        if previous is not None:
            SlaPolicy.objects.filter(scope=scope, is_current=True).update(is_current=False)
        policy = SlaPolicy(scope=scope, version=(previous.version + 1) if previous else 1,
                           name=name, client=client, contract=contract, targets=targets,
                           warning_percent=warning_percent, escalate_to=escalate_to,
                           created_by=actor if getattr(actor, "is_authenticated", False)
                           else None)
        policy.full_clean()
        policy.save()
        audit.record(actor=actor, action=AuditAction.CREATE, obj=policy,
                     changes={"version": [previous.version if previous else None,
                                          policy.version],
                              "targets": [previous.targets if previous else None, targets],
                              "warning_percent": [previous.warning_percent if previous
                                                  else None, warning_percent]})
        events.emit(ev.SlaPolicySaved.of(policy), client=policy.client_id)
    return policy


def policy_for(ticket: Ticket, at: datetime | None = None) -> SlaPolicy | None:
    """The current policy most specific to the ticket: active contract, client, default."""
    if ticket.client_id is not None:
        day = timezone.localdate(at or ticket.created_at)
        contract_ids = list(
            Contract.objects.filter(client_id=ticket.client_id, is_active=True,
                                    starts_on__lte=day)
            .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=day))
            .order_by("-starts_on", "-id").values_list("id", flat=True))
        if contract_ids:
            by_scope = {p.scope: p for p in SlaPolicy.objects.filter(
                scope__in=[f"contract:{i}" for i in contract_ids], is_current=True)}
            for contract_id in contract_ids:
                if f"contract:{contract_id}" in by_scope:
                    return by_scope[f"contract:{contract_id}"]
        policy = SlaPolicy.objects.filter(scope=f"client:{ticket.client_id}",
                                          is_current=True).first()
        if policy is not None:
            return policy
    return SlaPolicy.objects.filter(scope="default", is_current=True).first()


# --- The clock --------------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    """A stretch of time during which a clock runs; `end` None: still running."""

    start: datetime
    end: datetime | None


def status_timeline(ticket: Ticket) -> list[tuple[datetime, str]]:
    """(since, status) in order, from the status history (or the ticket alone)."""
    rows = list(ticket.status_changes.order_by("at", "id").values_list("at", "to_status"))
    if not rows or rows[0][0] > ticket.created_at:
        first = rows[0] if rows else None
        initial = Status.NEW if first else ticket.status
        rows.insert(0, (ticket.created_at, initial))
    return rows


def met_at(ticket: Ticket, metric: str) -> datetime | None:
    done = ticket.status in DONE_STATUSES
    if metric == Metric.FIRST_RESPONSE:
        if ticket.first_responded_at is not None:
            return ticket.first_responded_at
        return ticket.resolved_at if done else None
    return (ticket.resolved_at or ticket.closed_at) if done else None


def running_segments(timeline: list[tuple[datetime, str]], stop: datetime | None
                     ) -> list[Segment]:
    """The stretches in which the clock runs: not waiting on the client, not resolved or
    closed, and before `stop` (the moment the metric was met)."""
    segments: list[Segment] = []
    for i, (since, status) in enumerate(timeline):
        until = timeline[i + 1][0] if i + 1 < len(timeline) else None
        if stop is not None:
            if since >= stop:
                break
            until = stop if until is None or until > stop else until
        if status in PAUSED_STATUSES or status in DONE_STATUSES:
            continue
        if until is not None and until <= since:
            continue
        if segments and segments[-1].end == since:
            segments[-1] = Segment(segments[-1].start, until)  # e.g. new -> open
        else:
            segments.append(Segment(since, until))
    return segments


def elapsed(calendar, segments: list[Segment], now: datetime) -> timedelta:
    total = timedelta(0)
    for seg in segments:
        total += calendars.business_time_between(calendar, seg.start, seg.end or now)
    return total


def crossing(calendar, segments: list[Segment], amount: timedelta) -> datetime | None:
    """The instant at which the running time reaches `amount`, or None when the segments
    (closed, i.e. paused or met) never reach it."""
    used = timedelta(0)
    for seg in segments:
        if seg.end is None:
            return calendars.add_business_time(calendar, seg.start, amount - used)
        span = calendars.business_time_between(calendar, seg.start, seg.end)
        if used + span >= amount and amount > used:
            return calendars.add_business_time(calendar, seg.start, amount - used)
        used += span
    return None


@dataclass
class ClockValues:
    state: str
    elapsed_seconds: int
    due_at: datetime | None
    warning_at: datetime | None
    met_at: datetime | None


def compute(calendar, timeline, stop: datetime | None, target: timedelta,
            warning_percent: int, now: datetime) -> ClockValues:
    segments = running_segments(timeline, stop)
    used = elapsed(calendar, segments, now)
    running = bool(segments) and segments[-1].end is None
    due = crossing(calendar, segments, target)
    warning = None
    if running:
        warning = crossing(calendar, segments, target * warning_percent / 100)
        warning = warning.replace(microsecond=0) if warning else None
    state = ClockState.MET if stop is not None else (
        ClockState.RUNNING if running else ClockState.PAUSED)
    return ClockValues(state=state, elapsed_seconds=int(used.total_seconds()), due_at=due,
                       warning_at=warning, met_at=stop)


def calendar_of(ticket: Ticket):
    if ticket.client_id is None:
        return calendars.ALWAYS
    return calendars.calendar_for_client(ticket.client)


def recompute_ticket(ticket_id: int, now: datetime | None = None) -> list[SlaClock]:
    """Bring the ticket's clocks up to date with its status history. Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        ticket = (Ticket.objects.select_for_update(of=("self",)).select_related("client")
                  .filter(pk=ticket_id).first())
        if ticket is None:
            return []
        existing = {c.metric: c for c in SlaClock.objects.select_related("policy")
                    .filter(ticket=ticket)}
        resolved = policy_for(ticket)
        timeline = status_timeline(ticket)
        calendar = calendar_of(ticket)
        result, late = [], []
        for metric in Metric.values:
            clock = existing.get(metric)
            policy = resolved
            if clock is not None and resolved is not None and clock.policy.scope == resolved.scope:
                policy = clock.policy  # keep the version the clock started with
            minutes = policy.target_minutes(ticket.priority, metric) if policy else None
            if not minutes:
                if clock is not None and clock.breached_at is None:
                    _record(clock, None, "delete")
                    clock.delete()
                continue
            values = compute(calendar, timeline, met_at(ticket, metric),
                             timedelta(minutes=minutes), policy.warning_percent, now)
            fields = {"policy": policy, "priority": ticket.priority,
                      "target_seconds": minutes * 60, "state": values.state,
                      "elapsed_seconds": values.elapsed_seconds, "due_at": values.due_at,
                      "warning_at": values.warning_at, "met_at": values.met_at}
            if clock is None:
                clock = SlaClock(ticket=ticket, metric=metric, computed_at=now, **fields)
                clock.save()
                _record(clock, fields, "create")
            else:
                changed = {k: v for k, v in fields.items() if getattr(clock, k) != v}
                if "warning_at" in changed and clock.warned_at is not None and (
                        values.warning_at is not None and values.warning_at > now):
                    changed["warned_at"] = None  # the promise moved: warn again in time
                if changed:
                    before = {k: getattr(clock, k) for k in changed}
                    for key, value in changed.items():
                        setattr(clock, key, value)
                    clock.computed_at = now
                    clock.save(update_fields=[*changed, "computed_at"])
                    # Elapsed time moves on every recompute of a running clock; only a
                    # change of the promise itself is worth an audit row and an event.
                    significant = {k: [before[k], v] for k, v in changed.items()
                                   if k != "elapsed_seconds"}
                    if significant:
                        _record(clock, significant, "update")
            if clock.due_at is not None and clock.due_at <= now and clock.breached_at is None:
                late.append(clock.pk)
            result.append(clock)
        for clock_id in late:  # met late, or already overdue: announce the breach now
            claim_breach(clock_id, now)
    return result


def _plain(value):
    return getattr(value, "pk", value)


def _record(clock: SlaClock, fields: dict | None, how: str) -> None:
    """Audit row and event for a clock write (derived data, but still a write)."""
    client_id = clock.ticket.client_id
    if how == "create":
        changes = {k: [None, audit._plain(_plain(v))] for k, v in fields.items()}
        action = AuditAction.CREATE
    elif how == "update":
        changes = {k: [audit._plain(_plain(a)), audit._plain(_plain(b))]
                   for k, (a, b) in fields.items()}
        action = AuditAction.UPDATE
    else:
        changes, action = {}, AuditAction.DELETE
    audit.record(actor=None, action=action, obj=clock, client_id=client_id,
                 object_repr=f"{clock.ticket.reference} {clock.get_metric_display()}",
                 changes=changes)
    events.emit(ev.SlaChanged.of(clock), client=client_id)


# --- Sweeps: warnings and breaches ------------------------------------------------------

def due_warnings(now: datetime | None = None) -> list[int]:
    """One query: running clocks past their warning instant, not warned, not yet due (a
    clock already past due gets its breach, not a warning)."""
    now = now or timezone.now()
    return list(SlaClock.objects.filter(warning_at__lte=now, warned_at__isnull=True,
                                        breached_at__isnull=True, due_at__gt=now,
                                        state=ClockState.RUNNING)
                .order_by("warning_at", "id").values_list("id", flat=True)[:SWEEP_LIMIT])


def due_breaches(now: datetime | None = None) -> list[int]:
    """One query: clocks past due (running, paused after the breach, or met late) with no
    breach recorded yet."""
    now = now or timezone.now()
    return list(SlaClock.objects.filter(due_at__lte=now, breached_at__isnull=True)
                .order_by("due_at", "id").values_list("id", flat=True)[:SWEEP_LIMIT])


def claim_warning(clock_id: int, now: datetime | None = None) -> bool:
    """Compare-and-set on warned_at; the winner records and announces sla.warning."""
    now = now or timezone.now()
    with transaction.atomic():
        won = SlaClock.objects.filter(pk=clock_id, warned_at__isnull=True,
                                      breached_at__isnull=True, warning_at__lte=now,
                                      due_at__gt=now).update(warned_at=now)
        if not won:
            return False
        clock = SlaClock.objects.select_related("ticket", "policy").get(pk=clock_id)
        audit.record(actor=None, action=AuditAction.UPDATE, obj=clock,
                     client_id=clock.ticket.client_id,
                     object_repr=f"{clock.ticket.reference} {clock.get_metric_display()}",
                     changes={"warned_at": [None, audit._plain(now)]})
        events.emit(ev.SlaWarning.of(clock, warning_at=audit._plain(clock.warning_at)),
                    client=clock.ticket.client_id)
    return True


def claim_breach(clock_id: int, now: datetime | None = None) -> bool:
    """Compare-and-set on breached_at (set to the due instant, when the promise broke); the
    winner records the breach, announces sla.breached and escalates a ticket still open."""
    now = now or timezone.now()
    with transaction.atomic():
        won = SlaClock.objects.filter(pk=clock_id, breached_at__isnull=True,
                                      due_at__lte=now).update(breached_at=F("due_at"))
        if not won:
            return False
        clock = SlaClock.objects.select_related("ticket", "policy").get(pk=clock_id)
        ticket = clock.ticket
        escalate_to = clock.policy.escalate_to
        escalated = None
        if (escalate_to is not None and escalate_to.is_active and ticket.is_open
                and clock.state == ClockState.RUNNING and ticket.assignee_id != escalate_to.pk):
            escalated = escalate_to
        audit.record(actor=None, action=AuditAction.UPDATE, obj=clock,
                     client_id=ticket.client_id,
                     object_repr=f"{ticket.reference} {clock.get_metric_display()}",
                     changes={"breached_at": [None, audit._plain(clock.breached_at)],
                              **({"escalated_to": [None, escalated.pk]} if escalated else {})})
        events.emit(ev.SlaBreached.of(clock, breached_at=audit._plain(clock.breached_at),
                                      escalated_to_id=escalated.pk if escalated else None,
                                      late=clock.state == ClockState.MET),
                    client=ticket.client_id)
        if escalated is not None:
            from .. import actions

            SlaClock.objects.filter(pk=clock_id).update(escalated_to=escalated)
            actions.change_ticket(
                actor=None, ticket=ticket, assignee=escalated,
                note=f"SLA {clock.get_metric_display().lower()} target breached; "
                     f"escalated to {escalated.display_name}.")
    return True


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Announce every due warning and breach (safe to run anywhere, any number of times)."""
    now = now or timezone.now()
    warned = sum(claim_warning(i, now) for i in due_warnings(now))
    breached = sum(claim_breach(i, now) for i in due_breaches(now))
    return {"warned": warned, "breached": breached}


def has_due_work() -> bool:
    """The scheduler's cheap check before enqueueing the sweep."""
    now = timezone.now()
    return SlaClock.objects.filter(
        Q(warning_at__lte=now, warned_at__isnull=True, breached_at__isnull=True,
          due_at__gt=now, state=ClockState.RUNNING)
        | Q(due_at__lte=now, breached_at__isnull=True)).exists()


# --- Breach reasons ---------------------------------------------------------------------

def record_breach_reason(*, actor, clock: SlaClock, reason: str) -> SlaClock:
    """A technician's account of why a target was missed (kept with the breach)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the target was missed."})
    if clock.breached_at is None:
        raise ValidationError({"reason": "This target has not been breached."})
    with transaction.atomic():
        clock = (SlaClock.objects.select_for_update(of=("self",)).select_related("ticket")
                 .get(pk=clock.pk))
        before = clock.breach_reason
        clock.breach_reason = reason[:5000]
        clock.breach_reason_by = actor if getattr(actor, "is_authenticated", False) else None
        clock.breach_reason_at = timezone.now()
        clock.save(update_fields=["breach_reason", "breach_reason_by", "breach_reason_at"])
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=clock,
                     client_id=clock.ticket.client_id,
                     object_repr=f"{clock.ticket.reference} {clock.get_metric_display()}",
                     changes={"breach_reason": [before, clock.breach_reason]})
        events.emit(ev.SlaBreachReason(ticket_id=clock.ticket_id, metric=clock.metric),
                    client=clock.ticket.client_id)
    return clock


def remaining_seconds(clock: SlaClock, now: datetime | None = None,
                      calendars_by_client: dict | None = None) -> int | None:
    """Business seconds left (negative when overdue) for a running or paused clock.

    `calendars_by_client` caches calendars across the rows of a list (one holiday query
    per client, not per row)."""
    if clock.state == ClockState.MET:
        return None
    now = now or timezone.now()
    used = clock.elapsed_seconds
    if clock.state == ClockState.RUNNING and clock.computed_at < now:
        cache = calendars_by_client if calendars_by_client is not None else {}
        key = clock.ticket.client_id
        if key not in cache:
            cache[key] = calendar_of(clock.ticket)
        calendar = cache[key]
        used += int(calendars.business_seconds_between(calendar, clock.computed_at, now))
    return clock.target_seconds - used


def recompute_open(*, client_id: int | None = None, scope: str | None = None) -> int:
    """Recompute the open tickets a policy or calendar change may affect: every open ticket
    of the client (all clients when None) that has no clock yet or whose clocks follow
    another scope than `scope`. Returns how many tickets were recomputed."""
    from ..choices import OPEN_STATUSES

    tickets = Ticket.objects.filter(status__in=OPEN_STATUSES)
    if client_id is not None:
        tickets = tickets.filter(client_id=client_id)
    if scope is not None:
        tickets = tickets.exclude(sla_clocks__policy__scope=scope)
    count = 0
    for ticket_id in tickets.order_by("id").values_list("id", flat=True).distinct():
        recompute_ticket(ticket_id)
        count += 1
    return count
