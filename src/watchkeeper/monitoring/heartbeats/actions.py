"""Passive heartbeats: scheduled jobs (backups, cron) call their own URL; a job that is late
or missing raises an alert, a job that reports failure too.

- A job has a schedule (every `period_seconds`, or a cron expression in a time zone) and a
  grace period. `expected_at` is when the next call is due; after `expected_at + grace`
  without a call the job is down (critical).
- The public ping URL is /hb/<uid> (success), /hb/<uid>/start, /hb/<uid>/fail. A call is
  one UPDATE of the job row (no read: it marks the call `pending` and sets `next_due_at`
  to now) plus one INSERT ... SELECT of the ping log row.
- The sweep (a scheduler job, Healthchecks' sendalerts is the model) takes every job whose
  `next_due_at` has passed with one query on its partial index, claims each with a
  conditional UPDATE on `next_due_at` (two sweepers never both act), applies pending calls
  or the missed deadline, and sends the readings to alerts.record_results in one batch.

States: new (created, first call expected at the first scheduled time), up, started (a
/start call: it must finish within the grace period), late (past expected, inside grace:
no alert yet), down (missed: critical), failed (/fail: critical), paused (no alerts).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from watchkeeper.core import audit, catalogue, events
from watchkeeper.core.actions import create_object, delete_object, update_object
from watchkeeper.core.choices import AuditAction

from ..alerts import CheckResult, record_results
from ..choices import CheckKind, State
from ..models import Check, Policy
from .models import HeartbeatJob, HeartbeatPing, HeartbeatSchedule, HeartbeatStatus

HEARTBEAT_POLICY = "Heartbeats"
BODY_LIMIT = 1000
SWEEP_LIMIT = 5000
MIN_PERIOD = 60
MAX_PERIOD = 366 * 86400


class HeartbeatError(ValueError):
    """A heartbeat definition that cannot work; the message names the field."""


# --- Schedules ---------------------------------------------------------------------------

def validate_schedule(*, schedule: str, period_seconds: int | None, cron: str, tz: str,
                      grace_seconds: int) -> dict[str, Any]:
    if schedule not in HeartbeatSchedule.values:
        raise HeartbeatError("schedule: 'period' or 'cron'")
    try:
        ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise HeartbeatError(f"tz: unknown time zone {tz!r}") from None
    if not isinstance(grace_seconds, int) or not 0 <= grace_seconds <= MAX_PERIOD:
        raise HeartbeatError("grace_seconds: between 0 and one year")
    clean = {"schedule": schedule, "tz": tz or "UTC", "grace_seconds": grace_seconds,
             "cron": "", "period_seconds": period_seconds or 86400}
    if schedule == HeartbeatSchedule.PERIOD:
        if not isinstance(period_seconds, int) or not MIN_PERIOD <= period_seconds <= MAX_PERIOD:
            raise HeartbeatError(f"period_seconds: between {MIN_PERIOD} s and one year")
    else:
        cron = (cron or "").strip()
        if len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise HeartbeatError("cron: a five-field cron expression such as '30 2 * * *'")
        clean["cron"] = cron
    return clean


def expected_after(job: HeartbeatJob, at: datetime) -> datetime:
    """When the call after one made at `at` is expected."""
    if job.schedule == HeartbeatSchedule.CRON:
        local = at.astimezone(ZoneInfo(job.tz or "UTC"))
        return croniter(job.cron, local).get_next(datetime).astimezone(UTC)
    return at + timedelta(seconds=job.period_seconds)


def ping_url(job: HeartbeatJob) -> str:
    return f"{settings.BASE_URL.rstrip('/')}/hb/{job.uid}"


# --- Actions (each one transaction with its audit row and event) --------------------------

def _heartbeat_policy(client) -> Policy:
    from .. import actions as monitoring_actions

    policy = Policy.objects.filter(client=client, name=HEARTBEAT_POLICY).first()
    if policy is None:
        policy = monitoring_actions.create_policy(
            actor="heartbeats", name=HEARTBEAT_POLICY, client=client,
            description="Passive heartbeat jobs of this client (created automatically).")
    return policy


def create_heartbeat(*, actor, client, name: str, schedule: str = HeartbeatSchedule.PERIOD,
                     period_seconds: int | None = 86400, cron: str = "", tz: str = "UTC",
                     grace_seconds: int = 3600, device=None,
                     now: datetime | None = None) -> HeartbeatJob:
    """A new job with its own URL; its alerts come from a check of kind heartbeat in the
    client's "Heartbeats" policy. The first call is expected one schedule step from now."""
    from .. import actions as monitoring_actions

    name = (name or "").strip()
    if not name:
        raise HeartbeatError("name: required")
    if device is not None and device.client_id != client.pk:
        raise HeartbeatError("device: must belong to the same client")
    clean = validate_schedule(schedule=schedule, period_seconds=period_seconds, cron=cron,
                              tz=tz, grace_seconds=grace_seconds)
    now = now or timezone.now()
    with transaction.atomic():
        policy = _heartbeat_policy(client)
        if Check.objects.filter(policy=policy, name=name).exists():
            raise HeartbeatError("name: this client already has a heartbeat of that name")
        check = monitoring_actions.add_check(
            actor=actor, policy=policy, name=name, kind=CheckKind.HEARTBEAT,
            config={"heartbeat": True}, device=device, fail_after=1, recover_after=1)
        job = HeartbeatJob(client=client, check_template=check, device=device, name=name,
                           **clean)
        expected = expected_after(job, now)
        job = create_object(actor=actor, model=HeartbeatJob, client=client,
                            check_template=check, device=device, name=name,
                            expected_at=expected,
                            next_due_at=expected + timedelta(seconds=clean["grace_seconds"]),
                            created_at=now, **clean)
    return job


def update_heartbeat(*, actor, job: HeartbeatJob, now: datetime | None = None,
                     **fields: Any) -> HeartbeatJob:
    """Change name, schedule, grace or time zone; the deadline is recomputed from the last
    call (or from now for a job never called)."""
    allowed = {"name", "schedule", "period_seconds", "cron", "tz", "grace_seconds"}
    unknown = set(fields) - allowed
    if unknown:
        raise HeartbeatError(f"{sorted(unknown)[0]}: cannot be changed")
    merged = {k: fields.get(k, getattr(job, k)) for k in
              ("schedule", "period_seconds", "cron", "tz", "grace_seconds")}
    clean = validate_schedule(**merged)
    now = now or timezone.now()
    with transaction.atomic():
        name = (fields.get("name") or job.name).strip()
        if name != job.name:
            from .. import actions as monitoring_actions

            monitoring_actions.update_check(actor=actor, check=job.check_template, name=name)
        probe = HeartbeatJob(**clean)
        changes: dict[str, Any] = {"name": name, **clean}
        if job.status != HeartbeatStatus.PAUSED:
            expected = expected_after(probe, job.last_ping_at or now)
            changes.update(expected_at=expected,
                           next_due_at=max(expected + timedelta(
                               seconds=clean["grace_seconds"]), now))
        job = update_object(actor=actor, obj=job, **changes)
    return job


def pause_heartbeat(*, actor, job: HeartbeatJob) -> HeartbeatJob:
    """No alerts until the next call (which resumes it)."""
    with transaction.atomic():
        job = update_object(actor=actor, obj=job, status=HeartbeatStatus.PAUSED,
                            next_due_at=None, pending="")
        record_results([CheckResult(check_id=job.check_template_id, device_id=job.device_id,
                                    client_id=job.client_id, state=State.OK,
                                    message="paused")])
    return job


def delete_heartbeat(*, actor, job: HeartbeatJob) -> None:
    """Delete the job, its URL and its check (and so its alerts' check link)."""
    from .. import actions as monitoring_actions

    with transaction.atomic():
        check = job.check_template
        delete_object(actor=actor, obj=job)
        monitoring_actions.delete_check(actor=actor, check=check)


def regenerate_url(*, actor, job: HeartbeatJob) -> HeartbeatJob:
    """A new unguessable URL (the old one stops working at once)."""
    with transaction.atomic():
        job.uid = uuid.uuid4()
        HeartbeatJob.objects.filter(pk=job.pk).update(uid=job.uid)
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=job,
                     changes={"uid": ["••••", "••••"]})
        events.emit(catalogue.crud_event(HeartbeatJob, "changed", id=job.pk,
                                         changed=["uid"]), client=job.client_id)
    return job


# --- The ping endpoint's write ---------------------------------------------------------------

def record_ping(uid: uuid.UUID, kind: str, *, remote_ip: str | None = None,
                user_agent: str = "", body: str = "", now: datetime | None = None) -> bool:
    """Note a call of /hb/<uid>[/start|/fail]: one UPDATE of the job (no read) and one
    INSERT ... SELECT of the log row. False when no job has that uid."""
    if kind not in HeartbeatPing.Kind.values:
        raise ValueError(kind)
    now = now or timezone.now()
    stamp = {HeartbeatPing.Kind.SUCCESS: "last_ping_at", HeartbeatPing.Kind.START:
             "last_start_at", HeartbeatPing.Kind.FAIL: "last_fail_at"}[kind]
    with transaction.atomic():
        updated = HeartbeatJob.objects.filter(uid=uid).update(
            **{stamp: now}, pending=kind, next_due_at=now, pings=F("pings") + 1)
        if not updated:
            return False
        table = connection.ops.quote_name(HeartbeatPing._meta.db_table)
        jobs = connection.ops.quote_name(HeartbeatJob._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (job_id, at, kind, remote_ip, user_agent, body) "  # noqa: S608 - table names from the models, values bound
                f"SELECT id, %s, %s, %s, %s, %s FROM {jobs} WHERE uid = %s",
                [now, kind, remote_ip, user_agent[:200], body[:BODY_LIMIT],
                 uid.hex if connection.vendor == "sqlite" else uid])
    return True


# --- The sweep -------------------------------------------------------------------------------

@dataclass
class _Transition:
    fields: dict[str, Any]
    result: tuple[str, str] | None  # (state, message) for record_results, or None


def _transition(job: HeartbeatJob, now: datetime) -> _Transition:
    grace = timedelta(seconds=job.grace_seconds)
    pending = job.pending
    if pending == HeartbeatPing.Kind.SUCCESS:
        expected = expected_after(job, job.last_ping_at or now)
        took = ""
        if job.last_start_at and job.last_ping_at and job.last_start_at <= job.last_ping_at:
            took = f" after {(job.last_ping_at - job.last_start_at).total_seconds():.0f} s"
        return _Transition(
            {"status": HeartbeatStatus.UP, "expected_at": expected,
             "next_due_at": expected + grace},
            (State.OK, f"called at {job.last_ping_at:%Y-%m-%d %H:%M:%S} UTC{took}"))
    if pending == HeartbeatPing.Kind.START:
        # Must finish (success or fail) within the grace period.
        return _Transition({"status": HeartbeatStatus.STARTED,
                            "next_due_at": (job.last_start_at or now) + grace}, None)
    if pending == HeartbeatPing.Kind.FAIL:
        expected = expected_after(job, job.last_fail_at or now)
        return _Transition(
            {"status": HeartbeatStatus.FAILED, "expected_at": expected,
             "next_due_at": expected + grace},
            (State.CRITICAL, f"the job reported a failure at "
                             f"{job.last_fail_at:%Y-%m-%d %H:%M:%S} UTC"))
    if job.status == HeartbeatStatus.PAUSED:
        return _Transition({"next_due_at": None}, None)
    if job.status == HeartbeatStatus.STARTED:
        return _Transition(
            {"status": HeartbeatStatus.DOWN, "next_due_at": None},
            (State.CRITICAL, f"started at {job.last_start_at:%Y-%m-%d %H:%M:%S} UTC and did "
                             f"not finish within {job.grace_seconds} s"))
    expected = job.expected_at or now
    if now < expected + grace:
        # Past the expected time, inside the grace period: late, no alert yet.
        return _Transition({"status": HeartbeatStatus.LATE, "next_due_at": expected + grace},
                           None)
    last = (f"last call {job.last_ping_at:%Y-%m-%d %H:%M:%S} UTC" if job.last_ping_at
            else "never called")
    return _Transition(
        {"status": HeartbeatStatus.DOWN, "next_due_at": None},
        (State.CRITICAL, f"missed: expected by {expected:%Y-%m-%d %H:%M:%S} UTC "
                         f"(+{job.grace_seconds} s grace), {last}"))


def sweep(now: datetime | None = None, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Apply pending calls and missed deadlines of every job due now (see module doc)."""
    now = now or timezone.now()
    due = list(HeartbeatJob.objects.filter(next_due_at__lte=now).order_by("next_due_at")
               [:limit])
    results, counters = [], {"due": len(due), "claimed": 0}
    with transaction.atomic():
        for job in due:
            step = _transition(job, now)
            fields = {**step.fields, "pending": ""}
            # Claimed only if nobody (another sweep, a new call) changed the row meanwhile.
            won = HeartbeatJob.objects.filter(pk=job.pk, next_due_at=job.next_due_at,
                                              pending=job.pending).update(**fields)
            if not won:
                continue
            counters["claimed"] += 1
            if step.result is not None:
                state, message = step.result
                results.append(CheckResult(check_id=job.check_template_id,
                                           device_id=job.device_id, client_id=job.client_id,
                                           state=state, message=message[:500],
                                           observed_at=now))
        if results:
            for key, n in record_results(results, now).items():
                counters[key] = counters.get(key, 0) + n
    return counters


def prune_pings(keep: int | None = None) -> int:
    """Keep the newest `keep` log rows of each job (WATCHKEEPER_HEARTBEAT_PINGS_KEPT)."""
    keep = keep or settings.HEARTBEAT_PINGS_KEPT
    deleted = 0
    crowded = (HeartbeatPing.objects.values("job_id").annotate(n=Count("id"))
               .filter(n__gt=keep).values_list("job_id", flat=True))
    for job_id in list(crowded):
        kept = list(HeartbeatPing.objects.filter(job_id=job_id).order_by("-id")
                    .values_list("id", flat=True)[keep - 1:keep])
        if not kept:
            continue
        cutoff = kept[0]
        deleted += HeartbeatPing.objects.filter(job_id=job_id, id__lt=cutoff).delete()[0]
    return deleted
