"""Writes of alert ingestion: sources (create, revoke) and the alerts they post.

`record_alerts(source, items)` is the dedup write, one transaction per request:
- the open alerts of the request's keys are locked (primary-key order) and read once;
- a key with an open alert: a repeat is one `UPDATE ... count = count + n` per distinct n
  for the whole batch; a new severity or summary is a change of that alert (alert.changed);
  `resolved` resolves it (alert.resolved);
- a key without one: one multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING` of the new
  alerts (alert.opened each). The partial unique index (one open alert per key) makes a
  concurrent request's insert of the same key wait and skip: that key is then counted on the
  row the other request inserted, so two senders never open two alerts for one key;
- a key fired and resolved inside one batch is stored opened and resolved; a `resolved` for
  a key with no open alert changes nothing (counted as `resolved_unknown`).
Events carry the alert with what the source's policy asks of the helpdesk (a ticket for
this severity, resolve it on recovery), exactly as for a check's alerts.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from watchkeeper.core import audit, catalogue, events
from watchkeeper.core.actions import create_object
from watchkeeper.core.api.auth import hash_token
from watchkeeper.core.choices import AuditAction

from .. import events as ev
from ..choices import OPEN_STATUSES, STATE_RANK, AlertStatus, CheckKind, Suppression
from ..models import Alert, Check, Policy
from .models import IngestSource
from .parse import Item

INGEST_POLICY = "Alerts from other tools"
TOKEN_PREFIX = "wki_"


class IngestError(ValueError):
    """A source that cannot be created; the message starts with the field's name."""


def alert_key(source_id: int, dedup_key: str) -> str:
    return f"x{source_id}:" + hashlib.sha256(dedup_key.encode()).hexdigest()[:48]


def _policy(actor, client) -> Policy:
    from .. import actions as monitoring_actions

    policy = Policy.objects.filter(client=client, name=INGEST_POLICY).first()
    if policy is None:
        policy = monitoring_actions.create_policy(
            actor=actor, name=INGEST_POLICY, client=client, ticket_severities=["critical"],
            description="Alerts posted by other monitoring tools (created automatically): "
                        "its ticket severities and escalation apply to them.")
    return policy


def create_source(*, actor, client, name: str) -> tuple[IngestSource, str]:
    """A new source and its token (returned once: only its SHA-256 is kept). Its alerts
    are judged by a check of kind "external" in the client's "Alerts from other tools"
    policy."""
    from .. import actions as monitoring_actions

    name = (name or "").strip()
    if not name:
        raise IngestError("name: required")
    if len(name) > 200:
        raise IngestError("name: at most 200 characters")
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        if IngestSource.objects.filter(client=client, name=name).exists():
            raise IngestError("name: this client already has a source of that name")
        policy = _policy(actor, client)
        check = Check.objects.filter(policy=policy, name=name).first() or \
            monitoring_actions.add_check(actor=actor, policy=policy, name=name,
                                         kind=CheckKind.EXTERNAL, config={})
        source = create_object(actor=actor, model=IngestSource, client=client, name=name,
                               check_template=check, prefix=prefix,
                               token_hash=hash_token(raw),
                               created_by=actor if getattr(actor, "pk", None) else None)
    return source, raw


def revoke_source(*, actor, source: IngestSource) -> IngestSource:
    """The token stops working at once; the source's alerts stay."""
    if source.revoked_at is not None:
        return source
    now = timezone.now()
    with transaction.atomic():
        IngestSource.objects.filter(pk=source.pk).update(revoked_at=now)
        source.revoked_at = now
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=source,
                     changes={"revoked_at": [None, now.isoformat()]})
        events.emit(catalogue.crud_event(IngestSource, "changed", id=source.pk,
                                         changed=["revoked_at"]), client=source.client_id)
    return source


def source_for_token(raw: str) -> IngestSource | None:
    if not raw.startswith(TOKEN_PREFIX):
        return None
    return (IngestSource.objects.select_related("check_template__policy")
            .filter(token_hash=hash_token(raw), revoked_at__isnull=True).first())


# --- The dedup write ----------------------------------------------------------------------

def _event(cls: type[ev.AlertEvent], alert: Alert, policy: Policy, **extra):
    """The alert event of `cls`, with the source's policy read once per request."""
    return cls.of(alert, ticket_severities=list(policy.ticket_severities or []),
                  resolve_on_recovery=bool(policy.ticket_resolve_on_recovery), **extra)


def _summary(item: Item) -> str:
    return (item.summary or f"{item.event} on {item.resource}")[:500]


def _insert(alerts: list[Alert]) -> dict[str, int]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, key: the keys this call opened."""
    if not alerts:
        return {}
    fields = [f for f in Alert._meta.local_concrete_fields if not f.primary_key]
    table = connection.ops.quote_name(Alert._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    inserted: dict[str, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(alerts), 200):
            chunk = alerts[start:start + 200]
            params = [f.get_db_prep_save(getattr(a, f.attname), connection)
                      for a in chunk for f in fields]
            cursor.execute(
                f"INSERT INTO {table} ({cols}) VALUES {', '.join([row] * len(chunk))} "  # noqa: S608 - names from the model, values bound
                "ON CONFLICT DO NOTHING RETURNING id, key", params)
            inserted.update({key: pk for pk, key in cursor.fetchall()})
    return inserted


def record_alerts(source: IngestSource, items: list[Item],
                  now: datetime | None = None) -> dict[str, int]:
    """Store `items` of `source` (see the module doc); returns counters."""
    now = now or timezone.now()
    counters: dict[str, int] = defaultdict(int)
    if not items:
        return dict(counters)
    policy = source.check_template.policy
    by_key: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_key[alert_key(source.pk, item.dedup_key)].append(item)
    out: list[tuple[int, ev.AlertEvent]] = []
    with transaction.atomic():
        open_alerts = {a.key: a for a in Alert.objects.select_for_update()
                       .filter(key__in=list(by_key), status__in=OPEN_STATUSES).order_by("pk")}
        repeats: dict[int, list[int]] = defaultdict(list)
        resolved: list[Alert] = []
        new: list[tuple[Alert, int, bool]] = []  # alert, firings, then resolved
        for key, seq in by_key.items():
            firing = [i for i in seq if i.status == "firing"]
            last = seq[-1]
            alert = open_alerts.get(key)
            if alert is None:
                if not firing:
                    counters["resolved_unknown"] += len(seq)
                    continue
                first = firing[-1]
                new.append((Alert(key=key, client_id=source.client_id,
                                  check_template_id=source.check_template_id,
                                  check_name=first.event, severity=first.severity,
                                  summary=_summary(first), count=len(firing), opened_at=now,
                                  last_seen_at=now, source_id=source.pk,
                                  resource=first.resource, attributes=first.attributes,
                                  escalate_at=now + timedelta(
                                      minutes=policy.escalate_after_minutes)
                                  if policy.escalate_after_minutes else None),
                            len(firing), last.status == "resolved"))
                continue
            if last.status == "resolved":
                resolved.append(alert)
                continue
            if last.severity != alert.severity or _summary(last) != alert.summary:
                old = alert.severity
                alert.severity, alert.summary = last.severity, _summary(last)
                alert.count += len(firing)
                alert.last_seen_at, alert.attributes = now, last.attributes
                alert.save(update_fields=["severity", "summary", "count", "last_seen_at",
                                          "attributes"])
                counters["changed"] += 1
                out.append((alert.client_id, _event(
                    ev.AlertChanged, alert, policy, change="severity", previous_severity=old,
                    worse=STATE_RANK[alert.severity] > STATE_RANK[old])))
            else:
                repeats[len(firing)].append(alert.pk)
        for n, pks in repeats.items():
            counters["repeats"] += Alert.objects.filter(pk__in=pks).update(
                count=F("count") + n, last_seen_at=now)
        if resolved:
            Alert.objects.filter(pk__in=[a.pk for a in resolved]).update(
                status=AlertStatus.RESOLVED, resolved_at=now, escalate_at=None,
                last_seen_at=now)
            for alert in resolved:
                alert.status, alert.resolved_at = AlertStatus.RESOLVED, now
                counters["resolved"] += 1
                out.append((alert.client_id,
                            _event(ev.AlertResolved, alert, policy, recovered=True)))
        if new:
            # Key order: two requests inserting overlapping keys wait on each other in the
            # same order, never in a cycle (no deadlock).
            new.sort(key=lambda entry: entry[0].key)
            _suppress_in_maintenance(source.client_id, [a for a, _, _ in new], now)
            inserted = _insert([a for a, _, _ in new])
            lost: dict[int, list[str]] = defaultdict(list)
            closing = []
            for alert, firings, then_resolved in new:
                pk = inserted.get(alert.key)
                if pk is None:
                    # A concurrent request opened this key first: count on its alert.
                    lost[firings].append(alert.key)
                    continue
                alert.pk = pk
                counters["opened"] += 1
                out.append((alert.client_id, _event(ev.AlertOpened, alert, policy)))
                if then_resolved:
                    closing.append(alert)
            for n, keys in lost.items():
                counters["repeats"] += Alert.objects.filter(
                    key__in=keys, status__in=OPEN_STATUSES).update(
                    count=F("count") + n, last_seen_at=now)
            if closing:
                Alert.objects.filter(pk__in=[a.pk for a in closing]).update(
                    status=AlertStatus.RESOLVED, resolved_at=now, escalate_at=None)
                for alert in closing:
                    alert.status, alert.resolved_at = AlertStatus.RESOLVED, now
                    counters["resolved"] += 1
                    out.append((alert.client_id,
                            _event(ev.AlertResolved, alert, policy, recovered=True)))
        if out:
            events.emit_many(out)
        if source.last_used_at is None or now - source.last_used_at > timedelta(minutes=1):
            # At most once a minute: a busy sender must not serialise on its source row.
            IngestSource.objects.filter(pk=source.pk).update(last_used_at=now)
    counters["received"] = len(items)
    return dict(counters)


def _suppress_in_maintenance(client_id: int, alerts: list[Alert], now: datetime) -> None:
    from .. import maintenance
    from ..models import MaintenanceWindow

    if not MaintenanceWindow.objects.filter(client_id=client_id).exists():
        return
    if maintenance.in_maintenance(client_id, None, now):
        for alert in alerts:
            alert.suppressed = Suppression.MAINTENANCE
