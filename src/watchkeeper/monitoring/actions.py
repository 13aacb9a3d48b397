"""Writes of the monitoring app: each is one transaction with its audit row and event.

Policies and their checks are versioned: every change to a policy or one of its checks
bumps the policy's version and stores a `PolicyVersion` snapshot naming what it references.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from watchkeeper.core import audit, catalogue, events
from watchkeeper.core.actions import create_object, delete_object, update_object
from watchkeeper.core.choices import AuditAction

from . import events as ev
from .choices import OPEN_STATUSES, SERVER_KINDS, AlertStatus, Scope
from .models import (
    Alert,
    Check,
    CheckOverride,
    DeviceGroup,
    MaintenanceWindow,
    NotificationChannel,
    Policy,
    PolicyAssignment,
    PolicyVersion,
)


class ActionError(ValueError):
    """A write refused for a reason the user can fix."""


# --- Policies and checks -----------------------------------------------------------------

def _references(policy: Policy) -> list[str]:
    refs = set()
    for check in policy.checks.all():
        refs.add(f"kind:{check.kind}")
        cfg = check.config or {}
        for key, prefix in (("metric", "metric"), ("mount", "mount"), ("service", "service"),
                            ("process", "process"), ("script_id", "script")):
            if cfg.get(key) not in (None, ""):
                refs.add(f"{prefix}:{cfg[key]}")
    return sorted(refs)


def masked_config(kind: str, config: dict | None) -> dict:
    from .poller.engine import masked

    return masked(kind, config or {})


def _mask_check_audit(check: Check, data: dict) -> dict:
    if isinstance(data.get("config"), dict):
        data["config"] = masked_config(check.kind, data["config"])
    return data


audit.register_masker(Check, _mask_check_audit)


def _mask_channel_audit(channel: NotificationChannel, data: dict) -> dict:
    if data.get("url_enc"):
        data["url_enc"] = "••••"  # the URL is the credential of a Slack/Teams webhook
    return data


audit.register_masker(NotificationChannel, _mask_channel_audit)


def _snapshot_version(policy: Policy, actor) -> PolicyVersion:
    checks = [{"id": c.pk, "name": c.name, "kind": c.kind,
               "config": masked_config(c.kind, c.config),
               "interval_seconds": c.interval_seconds, "fail_after": c.fail_after,
               "recover_after": c.recover_after, "is_enabled": c.is_enabled,
               "device": c.device_id} for c in policy.checks.order_by("name", "id")]
    snapshot = {"name": policy.name, "description": policy.description,
                "is_enabled": policy.is_enabled, "ticket_severities": policy.ticket_severities,
                "ticket_resolve_on_recovery": policy.ticket_resolve_on_recovery,
                "escalate_after_minutes": policy.escalate_after_minutes, "checks": checks}
    return PolicyVersion.objects.create(
        policy=policy, version=policy.version, snapshot=snapshot,
        references=_references(policy),
        created_by=actor if getattr(actor, "is_authenticated", False) else None)


def _bump(policy: Policy, actor) -> None:
    """A policy or one of its checks changed: next version, with its snapshot."""
    Policy.objects.filter(pk=policy.pk).update(version=policy.version + 1,
                                               updated_at=timezone.now())
    policy.version += 1
    _snapshot_version(policy, actor)


def create_policy(*, actor, name: str, client=None, **fields: Any) -> Policy:
    with transaction.atomic():
        policy = create_object(actor=actor, model=Policy, name=name, client=client, **fields)
        _snapshot_version(policy, actor)
    return policy


def update_policy(*, actor, policy: Policy, **fields: Any) -> Policy:
    with transaction.atomic():
        before = audit.snapshot(policy)
        policy = update_object(actor=actor, obj=policy, **fields)
        if audit.snapshot(policy) != before:
            _bump(policy, actor)
    return policy


def delete_policy(*, actor, policy: Policy) -> None:
    """Delete a policy and its checks; their open alerts are resolved first (nothing would
    ever resolve them afterwards)."""
    with transaction.atomic():
        resolve_alerts(actor=actor, alerts=list(Alert.objects.filter(
            check_template__policy=policy, status__in=OPEN_STATUSES)))
        delete_object(actor=actor, obj=policy)


def _validate_check(kind: str, config: dict) -> None:
    from .evaluate import validate_config

    errors = validate_config(kind, config)
    if errors:
        raise ActionError("; ".join(errors))


def _server_config(kind: str, config: dict, check: Check | None = None,
                   device=None) -> dict:
    """A server-side check's config as stored: a secret sent back masked is kept only for
    the same target, the config is validated as the poller will run it, secrets sealed."""
    from .poller.checks import ConfigError
    from .poller.engine import keep_secrets, seal_secrets, validate_for_storage

    if check is not None:
        config = keep_secrets(kind, config, check.kind, check.config or {},
                              same_device=getattr(device, "pk", device) == check.device_id)
    try:
        validate_for_storage(kind, config)
    except ConfigError as exc:
        raise ActionError(str(exc)) from None
    return seal_secrets(kind, config)


def add_check(*, actor, policy: Policy, name: str, kind: str, config: dict | None = None,
              **fields: Any) -> Check:
    config = config or {}
    _validate_check(kind, config)
    if kind in SERVER_KINDS:
        config = _server_config(kind, config)
    with transaction.atomic():
        if kind in SERVER_KINDS:
            fields.setdefault("next_run_at", timezone.now())
        check = create_object(actor=actor, model=Check, policy=policy, name=name, kind=kind,
                              config=config, **fields)
        _bump(policy, actor)
    return check


def update_check(*, actor, check: Check, **fields: Any) -> Check:
    kind = fields.get("kind", check.kind)
    if "config" in fields or "kind" in fields:
        _validate_check(kind, fields.get("config", check.config))
    if kind in SERVER_KINDS and {"config", "kind", "device"} & set(fields):
        fields["config"] = _server_config(
            kind, fields.get("config", masked_config(check.kind, check.config)), check,
            fields.get("device", check.device_id))
    with transaction.atomic():
        before = audit.snapshot(check)
        check = update_object(actor=actor, obj=check, **fields)
        if audit.snapshot(check) != before:
            _bump(check.policy, actor)
    return check


def delete_check(*, actor, check: Check) -> None:
    with transaction.atomic():
        policy = check.policy
        resolve_alerts(actor=actor, alerts=list(Alert.objects.filter(
            check_template=check, status__in=OPEN_STATUSES)))
        delete_object(actor=actor, obj=check)
        _bump(policy, actor)


def _scope_fields(scope: str, target) -> dict[str, Any]:
    """client/site/group/device columns of an assignment or override at `scope`."""
    if scope == Scope.GLOBAL:
        if target is not None:
            raise ActionError("A global assignment has no target.")
        return {}
    if target is None:
        raise ActionError(f"A {scope} assignment needs a target.")
    if scope == Scope.CLIENT:
        return {"client": target}
    return {"client_id": target.client_id, scope: target}


def assign_policy(*, actor, policy: Policy, scope: str, target=None) -> PolicyAssignment:
    fields = _scope_fields(scope, target)
    owner = fields.get("client") or fields.get("client_id")
    owner_id = getattr(owner, "pk", owner)
    if policy.client_id and policy.client_id != owner_id:
        raise ActionError("A client's policy can only be assigned within that client.")
    return create_object(actor=actor, model=PolicyAssignment, policy=policy, scope=scope,
                         **fields)


def unassign_policy(*, actor, assignment: PolicyAssignment) -> None:
    delete_object(actor=actor, obj=assignment)


def set_override(*, actor, check: Check, scope: str, target=None,
                 is_enabled: bool | None = None, config: dict | None = None) -> CheckOverride:
    fields = _scope_fields(scope, target)
    if config and check.kind in SERVER_KINDS:
        from .poller.checks import SECRET_FIELDS

        if set(config) & set(SECRET_FIELDS.get(check.kind, ())):
            raise ActionError("Secrets (community, keys) are set on the check itself.")
    if config:
        _validate_check(check.kind, {**check.config, **config})
    with transaction.atomic():
        lookup = {k if not hasattr(v, "pk") else f"{k}_id": getattr(v, "pk", v)
                  for k, v in fields.items()}
        existing = CheckOverride.objects.filter(check_template=check, scope=scope,
                                                **lookup).first()
        if existing:
            return update_object(actor=actor, obj=existing, is_enabled=is_enabled,
                                 config=config or {})
        return create_object(actor=actor, model=CheckOverride, check_template=check,
                             scope=scope, is_enabled=is_enabled, config=config or {},
                             **fields)


def delete_override(*, actor, override: CheckOverride) -> None:
    delete_object(actor=actor, obj=override)


# --- Groups, maintenance, channels ----------------------------------------------

def create_group(*, actor, client, name: str, devices=()) -> DeviceGroup:
    with transaction.atomic():
        group = create_object(actor=actor, model=DeviceGroup, client=client, name=name)
        set_group_devices(actor=actor, group=group, devices=devices)
    return group


def set_group_devices(*, actor, group: DeviceGroup, devices) -> DeviceGroup:
    devices = list(devices)
    if any(d.client_id != group.client_id for d in devices):
        raise ActionError("A group holds devices of its own client only.")
    with transaction.atomic():
        before = sorted(group.devices.values_list("id", flat=True))
        group.devices.set(devices)
        after = sorted(d.pk for d in devices)
        if before != after:
            audit.record(actor=actor, action=AuditAction.UPDATE, obj=group,
                         changes={"devices": [before, after]})
            events.emit(catalogue.crud_event(DeviceGroup, "changed", id=group.pk,
                                             changed=["devices"]), client=group.client_id)
    return group




def create_maintenance(*, actor, client, name: str, starts_at: datetime,
                       duration_minutes: int, rrule: str = "", site=None,
                       device=None) -> MaintenanceWindow:
    if rrule:
        from dateutil.rrule import rrulestr

        try:
            rrulestr(rrule, dtstart=starts_at)
        except (ValueError, TypeError) as exc:
            raise ActionError(f"Recurrence rule not understood: {exc}") from exc
    for obj in (site, device):
        if obj is not None and obj.client_id != client.pk:
            raise ActionError("The site or device belongs to another client.")
    return create_object(actor=actor, model=MaintenanceWindow, client=client, name=name,
                         starts_at=starts_at, duration_minutes=duration_minutes, rrule=rrule,
                         site=site, device=device)


def delete_maintenance(*, actor, window: MaintenanceWindow) -> None:
    delete_object(actor=actor, obj=window)


def create_channel(*, actor, name: str, kind: str, client=None, contacts=(),
                   catch_up: bool = False, **fields: Any) -> NotificationChannel:
    """Create a channel; with `catch_up`, also tell it once of the alerts open now that it
    matches (catch_up_channel). The ids queued are left on `channel.caught_up`."""
    from .channels.notify import seal_url, validate_channel

    errors = validate_channel(kind, {**fields, "client": client})
    if errors:
        raise ActionError("; ".join(errors))
    fields["url_enc"] = seal_url(fields.pop("url", "") or "")
    with transaction.atomic():
        if fields.get("digest_minutes"):
            fields.setdefault("next_digest_at",
                              timezone.now() + timedelta(minutes=fields["digest_minutes"]))
        channel = create_object(actor=actor, model=NotificationChannel, name=name, kind=kind,
                                client=client, **fields)
        if contacts:
            contacts = list(contacts)
            if any(c.client_id != channel.client_id for c in contacts):
                raise ActionError("Contacts must belong to the channel's client.")
            channel.contacts.set(contacts)
        channel.caught_up = catch_up_channel(actor=actor, channel=channel) if catch_up else []
    return channel


def update_channel(*, actor, channel: NotificationChannel, catch_up: bool = False,
                   contacts=None, **fields: Any) -> NotificationChannel:
    """Change a channel (and its contacts, when given); with `catch_up`, then tell it once
    of the open alerts it matches and was not told of (what a switch-on or a wider scope
    lets in), in one transaction."""
    from .channels.notify import channel_url, mask_url, seal_url, validate_channel

    if "url" in fields:  # the URL shown (masked) sent back unchanged keeps the stored one
        url = fields.pop("url") or ""
        current = channel_url(channel)
        if url not in (current, mask_url(current)):
            fields["url"] = url
    merged = {f.name: getattr(channel, f.name) for f in channel._meta.concrete_fields}
    merged.update(fields)
    errors = validate_channel(merged["kind"], merged)
    if errors:
        raise ActionError("; ".join(errors))
    if "url" in fields:
        fields["url_enc"] = seal_url(fields.pop("url"))
    with transaction.atomic():
        channel = update_object(actor=actor, obj=channel, **fields)
        if contacts is not None:
            _set_channel_contacts(actor=actor, channel=channel, contacts=contacts)
        channel.caught_up = catch_up_channel(actor=actor, channel=channel) if catch_up else []
    return channel


def _set_channel_contacts(*, actor, channel: NotificationChannel, contacts) -> None:
    contacts = list(contacts)
    if any(c.client_id != channel.client_id for c in contacts):
        raise ActionError("Contacts must belong to the channel's client.")
    before = sorted(channel.contacts.values_list("id", flat=True))
    after = sorted(c.pk for c in contacts)
    if before != after:
        channel.contacts.set(contacts)
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=channel,
                     changes={"contacts": [before, after]})
        events.emit(catalogue.crud_event(NotificationChannel, "changed", id=channel.pk,
                                         changed=["contacts"]), client=channel.client_id)


def catch_up_channel(*, actor, channel: NotificationChannel) -> list[int]:
    """Tell `channel`, once each, of the open alerts it would have been told of had it
    existed, been on, or been this wide when they opened (notify.queue_catch_up). One audit
    row and one `notificationchannel.caught_up` event name the alerts; returns their ids."""
    from .channels.notify import queue_catch_up

    with transaction.atomic():
        # Two requests for one channel wait for each other (PostgreSQL; SQLite's
        # transactions are IMMEDIATE): the second then finds the alerts already queued.
        NotificationChannel.objects.select_for_update().filter(pk=channel.pk).first()
        ids = queue_catch_up(channel)
        if ids:
            audit.record(actor=actor, action=AuditAction.UPDATE, obj=channel,
                         changes={"catch_up_alerts": [[], ids]})
            events.emit(ev.NotificationChannelCaughtUp(id=channel.pk, count=len(ids),
                                                       alerts=ids), client=channel.client_id)
    return ids


def delete_channel(*, actor, channel: NotificationChannel) -> None:
    delete_object(actor=actor, obj=channel)


# --- Alerts --------------------------------------------------------------------------------

def _policies(alerts) -> dict[int | None, tuple[list[str], bool]]:
    """(ticket severities, resolve on recovery) of the alerts' policies, by check id: one
    query for a bulk action's events."""
    ids = {a.check_template_id for a in alerts if a.check_template_id}
    rows = Check.objects.filter(pk__in=ids).values_list(
        "id", "policy__ticket_severities", "policy__ticket_resolve_on_recovery")
    found = {pk: (list(sev or []), bool(res)) for pk, sev, res in rows}
    return {a.check_template_id: found.get(a.check_template_id, ([], False)) for a in alerts}


def _alert_event(cls: type[ev.AlertEvent], alert: Alert, policies=None, **extra):
    severities, resolve = (policies or _policies([alert]))[alert.check_template_id]
    return cls.of(alert, ticket_severities=severities, resolve_on_recovery=resolve, **extra)


def _alert_ids(alerts) -> list[int]:
    """Sorted, distinct ids of `alerts` (Alert rows or ids)."""
    return sorted({a if isinstance(a, int) else a.pk for a in alerts})


# Rows changed per statement: far below SQLite's bound-parameter limit, and a bulk action
# on thousands of alerts stays a handful of statements.
_CHUNK = 1000


def _set_alert_status(*, actor, alerts, status: str, extra: dict[str, Any],
                      event: type[ev.AlertEvent], by: str | None = None,
                      **event_fields: Any) -> list[Alert]:
    """Move every alert of `alerts` (rows or ids) that is still open and not already in
    `status` to `status`, set-based: per chunk of ids one locking read (primary-key order,
    so two bulk actions never deadlock; IMMEDIATE transactions on SQLite), one UPDATE, the
    audit rows and the events of the alerts changed in one insert each. Alerts already in
    `status` or resolved are left alone. Returns the alerts changed, as they now are."""
    done: list[Alert] = []
    sources = [s for s in OPEN_STATUSES if s != status]
    by = by or str(actor or "system")
    ids = _alert_ids(alerts)
    with transaction.atomic():
        for i in range(0, len(ids), _CHUNK):
            locked = list(Alert.objects.select_for_update().filter(
                pk__in=ids[i:i + _CHUNK], status__in=sources).order_by("pk"))
            if not locked:
                continue
            Alert.objects.filter(pk__in=[a.pk for a in locked]).update(status=status,
                                                                      **extra)
            changes = []
            for alert in locked:
                changes.append((alert, {"status": [alert.status, status]}))
                alert.status = status
                for field, value in extra.items():
                    setattr(alert, field, value)
            audit.record_many(actor=actor, action=AuditAction.UPDATE, entries=changes)
            policies = _policies(locked)
            events.emit_many([(a.client_id, _alert_event(event, a, policies, by=by,
                                                         **event_fields))
                              for a in locked])
            done.extend(locked)
    return done


def acknowledge_alerts(*, actor, alerts, by: str | None = None) -> list[Alert]:
    now = timezone.now()
    user = actor if getattr(actor, "is_authenticated", False) else None
    return _set_alert_status(actor=actor, alerts=alerts, status=AlertStatus.ACKNOWLEDGED,
                             extra={"acknowledged_at": now, "acknowledged_by": user,
                                    "escalate_at": None},
                             event=ev.AlertChanged, change="acknowledged", by=by)


def snooze_alerts(*, actor, alerts, minutes: int, by: str | None = None) -> list[Alert]:
    if minutes <= 0:
        raise ValidationError("Snooze for at least one minute.")
    until = timezone.now() + timedelta(minutes=minutes)
    return _set_alert_status(actor=actor, alerts=alerts, status=AlertStatus.SNOOZED,
                             extra={"snoozed_until": until, "escalate_at": None},
                             event=ev.AlertChanged, change="snoozed",
                             snoozed_until=until.isoformat(), by=by)


def resolve_alerts(*, actor, alerts, by: str | None = None) -> list[Alert]:
    return _set_alert_status(actor=actor, alerts=alerts, status=AlertStatus.RESOLVED,
                             extra={"resolved_at": timezone.now(), "escalate_at": None},
                             event=ev.AlertResolved, recovered=False, by=by)


def escalate_alert(*, alert_id: int, now: datetime) -> bool:
    """Claim one due escalation (compare-and-set on escalate_at) and announce it."""
    with transaction.atomic():
        claimed = Alert.objects.filter(pk=alert_id, status=AlertStatus.OPEN,
                                       escalate_at__lte=now).update(escalate_at=None,
                                                                    escalated_at=now)
        if claimed:
            alert = Alert.objects.get(pk=alert_id)
            audit.record(actor="monitoring", action=AuditAction.UPDATE, obj=alert,
                         changes={"escalated_at": [None, now.isoformat()]})
            events.emit(_alert_event(ev.AlertEscalated, alert), client=alert.client_id)
    return bool(claimed)


def wake_snoozed_alerts(*, now: datetime) -> int:
    """Snoozed alerts whose snooze ran out are active again (claimed one by one)."""
    woken = 0
    for alert in Alert.objects.filter(status=AlertStatus.SNOOZED, snoozed_until__lte=now):
        with transaction.atomic():
            if not Alert.objects.filter(pk=alert.pk, status=AlertStatus.SNOOZED).update(
                    status=AlertStatus.OPEN, snoozed_until=None):
                continue
            audit.record(actor="monitoring", action=AuditAction.UPDATE, obj=alert,
                         changes={"status": [AlertStatus.SNOOZED, AlertStatus.OPEN]})
            alert.status = AlertStatus.OPEN
            events.emit(_alert_event(ev.AlertChanged, alert, change="woke"),
                        client=alert.client_id)
            woken += 1
    return woken
