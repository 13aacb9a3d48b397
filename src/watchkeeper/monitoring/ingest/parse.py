"""Payloads of other tools -> `Item`s, validated one by one: a bad item is reported by its
index and field ("alerts[3].severity") and the valid ones are kept.

- Alertmanager's webhook (version "4"): `alerts[]` with `status` (firing | resolved),
  `labels`, `annotations`, `startsAt`, `endsAt`, `fingerprint`. The dedup key is the
  fingerprint (or, without one, the sorted labels); the event is `labels.alertname`, the
  resource `labels.instance` (or `job`), the severity `labels.severity` mapped to ours.
- The generic alert: `resource`, `event`, `severity` (critical | warning | unknown),
  `status` (firing | resolved, default firing), `summary`, `attributes` (an object),
  `dedup_key` (default "<resource>/<event>"). One object, a list, or `{"alerts": [...]}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watchkeeper.core.canonical import canonical_hash, canonical_json

MAX_ITEMS = 1000
SEVERITIES = ("critical", "warning", "unknown")
# Alertmanager's severity label is free text: the usual words, anything else is a warning.
AM_SEVERITY = {"critical": "critical", "page": "critical", "error": "critical",
               "high": "critical", "disaster": "critical", "fatal": "critical",
               "warning": "warning", "warn": "warning", "average": "warning",
               "minor": "warning", "info": "warning", "low": "warning",
               "unknown": "unknown"}
STATUSES = ("firing", "resolved")


@dataclass
class Item:
    dedup_key: str
    resource: str
    event: str
    severity: str
    status: str
    summary: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    index: int = 0


class PayloadError(ValueError):
    """The body as a whole is unusable; `field` names what is wrong."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def _text(value: Any, name: str, errors: dict, *, required: bool, limit: int) -> str:
    if value is None or value == "":
        if required:
            errors.setdefault(name, []).append("required")
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        errors.setdefault(name, []).append("must be a string")
        return ""
    text = str(value).strip()
    if len(text) > limit:
        errors.setdefault(name, []).append(f"at most {limit} characters")
    return text


def _list_of(body: Any) -> list:
    if isinstance(body, dict) and "alerts" in body:
        alerts = body["alerts"]
        if not isinstance(alerts, list):
            raise PayloadError("alerts", "must be a list")
    elif isinstance(body, list):
        alerts = body
    elif isinstance(body, dict):
        alerts = [body]
    else:
        raise PayloadError("body", "a JSON object or list")
    if not alerts:
        raise PayloadError("alerts", "must not be empty")
    if len(alerts) > MAX_ITEMS:
        raise PayloadError("alerts", f"at most {MAX_ITEMS} alerts per request")
    return alerts


def generic(body: Any) -> tuple[list[Item], dict[str, list[str]]]:
    items, errors = [], {}
    batch = not (isinstance(body, dict) and "alerts" not in body)
    for i, raw in enumerate(_list_of(body)):
        where = f"alerts[{i}]." if batch else ""
        mine: dict[str, list[str]] = {}
        if not isinstance(raw, dict):
            errors[f"alerts[{i}]"] = ["must be an object"]
            continue
        resource = _text(raw.get("resource"), f"{where}resource", mine, required=True,
                         limit=200)
        event = _text(raw.get("event"), f"{where}event", mine, required=True, limit=200)
        severity = str(raw.get("severity") or "").lower()
        status = str(raw.get("status") or "firing").lower()
        if status not in STATUSES:
            mine.setdefault(f"{where}status", []).append("firing or resolved")
        if severity not in SEVERITIES and not (status == "resolved" and not severity):
            mine.setdefault(f"{where}severity", []).append(
                f"one of {', '.join(SEVERITIES)}")
        summary = _text(raw.get("summary"), f"{where}summary", mine, required=False,
                        limit=500)
        attributes = raw.get("attributes") or {}
        if not isinstance(attributes, dict):
            mine.setdefault(f"{where}attributes", []).append("must be an object")
        elif len(canonical_json(attributes)) > 16384:
            mine.setdefault(f"{where}attributes", []).append("at most 16 KB")
        dedup = _text(raw.get("dedup_key"), f"{where}dedup_key", mine, required=False,
                      limit=500)
        if mine:
            errors.update(mine)
            continue
        items.append(Item(dedup_key=dedup or f"{resource}/{event}", resource=resource,
                          event=event, severity=severity or "warning", status=status,
                          summary=summary, attributes=attributes, index=i))
    return items, errors


def _time(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value


def alertmanager(body: Any) -> tuple[list[Item], dict[str, list[str]]]:
    if not isinstance(body, dict):
        raise PayloadError("body", "an Alertmanager webhook object (version 4)")
    if "alerts" not in body:
        raise PayloadError("alerts", "required")
    version = body.get("version")
    if version is not None and str(version) != "4":
        raise PayloadError("version", "only version 4 of the webhook payload is known")
    items, errors = [], {}
    for i, raw in enumerate(_list_of(body)):
        where = f"alerts[{i}]"
        if not isinstance(raw, dict):
            errors[where] = ["must be an object"]
            continue
        mine: dict[str, list[str]] = {}
        labels = raw.get("labels")
        annotations = raw.get("annotations") or {}
        if not isinstance(labels, dict) or not labels:
            mine[f"{where}.labels"] = ["required: an object of labels"]
            labels = {}
        if not isinstance(annotations, dict):
            mine[f"{where}.annotations"] = ["must be an object"]
            annotations = {}
        status = str(raw.get("status") or body.get("status") or "").lower()
        if status not in STATUSES:
            mine[f"{where}.status"] = ["firing or resolved"]
        for stamp in ("startsAt", "endsAt"):
            if raw.get(stamp) not in (None, "") and _time(raw.get(stamp)) is None:
                mine[f"{where}.{stamp}"] = ["an RFC 3339 time"]
        event = str(labels.get("alertname") or "")
        if labels and not event:
            mine[f"{where}.labels.alertname"] = ["required"]
        if mine:
            errors.update(mine)
            continue
        labels = {str(k): str(v) for k, v in labels.items()}
        resource = (labels.get("instance") or labels.get("job") or
                    labels.get("service") or "alertmanager")[:200]
        fingerprint = str(raw.get("fingerprint") or "")
        dedup = fingerprint or canonical_hash(labels)
        severity = AM_SEVERITY.get(labels.get("severity", "").lower(), "warning")
        summary = str(annotations.get("summary") or annotations.get("description") or
                      annotations.get("message") or "")[:500]
        attributes = {"labels": labels,
                      "annotations": {str(k): str(v) for k, v in annotations.items()},
                      "startsAt": raw.get("startsAt"), "endsAt": raw.get("endsAt"),
                      "generatorURL": raw.get("generatorURL"), "fingerprint": fingerprint}
        items.append(Item(dedup_key=dedup, resource=resource, event=event[:200],
                          severity=severity, status=status, summary=summary,
                          attributes=attributes, index=i))
    return items, errors


# Uptime Kuma's heartbeat status: 0 down, 1 up, 2 pending, 3 maintenance.
KUMA_STATUS = {0: ("firing", "critical"), 1: ("resolved", "warning"),
               2: ("firing", "warning"), 3: ("resolved", "warning")}


def uptime_kuma(body: Any) -> tuple[list[Item], dict[str, list[str]]]:
    """Uptime Kuma's webhook notification (preset application/json body): `heartbeat`
    (`status`, `msg`), `monitor` (`id`, `name`, `url`/`hostname`), `msg`. Its "Test" button
    sends neither heartbeat nor monitor: accepted, nothing stored."""
    if not isinstance(body, dict):
        raise PayloadError("body", "an Uptime Kuma webhook object")
    heartbeat, monitor = body.get("heartbeat"), body.get("monitor")
    if heartbeat is None and monitor is None:
        return [], {}
    errors: dict[str, list[str]] = {}
    if not isinstance(monitor, dict) or monitor.get("id") is None or not monitor.get("name"):
        errors["monitor"] = ["an object with id and name"]
    if not isinstance(heartbeat, dict) or heartbeat.get("status") not in KUMA_STATUS:
        errors["heartbeat.status"] = ["0, 1, 2 or 3"]
    if errors:
        return [], errors
    status, severity = KUMA_STATUS[heartbeat["status"]]
    name = str(monitor["name"])[:200]
    return [Item(dedup_key=f"uptime-kuma:{monitor['id']}", resource=name,
                 event=f"{monitor.get('type') or 'monitor'} down"[:200], severity=severity,
                 status=status, summary=str(heartbeat.get("msg") or body.get("msg") or
                                           "")[:500],
                 attributes={"monitor_id": monitor["id"],
                             "url": monitor.get("url") or monitor.get("hostname"),
                             "time": heartbeat.get("time")})], {}
