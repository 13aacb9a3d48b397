"""Which checks a device runs, and where each came from; the what-if replay of a policy.

Inheritance: a policy assigned globally, to the device's client, its site, one of its
groups, or the device itself contributes its checks. Levels go from least to most specific
(global < client < site < group < device); a check of a more specific level replaces a
check of the same name from a less specific one, and a `CheckOverride` at any level
applying to the device disables the check or replaces config keys (most specific last).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from .choices import SCOPE_ORDER, SERVER_KINDS, CheckKind, Scope, State
from .models import Check, CheckOverride, DeviceGroup, PolicyAssignment

_RANK = {s: i for i, s in enumerate(SCOPE_ORDER)}


def _device_levels(device_ids: list[int]) -> dict[int, dict[str, Any]]:
    from watchkeeper.inventory.selectors import all_devices

    levels = {d: {"client": c, "site": s, "groups": set()} for d, c, s in
              all_devices().filter(pk__in=device_ids).values_list("id", "client_id",
                                                                   "site_id")}
    through = DeviceGroup.devices.through
    for dev, group in through.objects.filter(device_id__in=device_ids).values_list(
            "device_id", "devicegroup_id"):
        if dev in levels:
            levels[dev]["groups"].add(group)
    return levels


def _matches(row, scope: str, lv: dict[str, Any], device_id: int) -> bool:
    if scope == Scope.GLOBAL:
        return True
    if scope == Scope.CLIENT:
        return row.client_id == lv["client"]
    if scope == Scope.SITE:
        return row.site_id is not None and row.site_id == lv["site"]
    if scope == Scope.GROUP:
        return row.group_id in lv["groups"]
    return row.device_id == device_id


def _level_filter(levels: dict[int, dict[str, Any]]) -> Q:
    clients = {lv["client"] for lv in levels.values()}
    sites = {lv["site"] for lv in levels.values() if lv["site"]}
    groups = set().union(*(lv["groups"] for lv in levels.values())) if levels else set()
    return (Q(scope=Scope.GLOBAL) | Q(scope=Scope.CLIENT, client_id__in=clients)
            | Q(scope=Scope.SITE, site_id__in=sites) | Q(scope=Scope.GROUP, group_id__in=groups)
            | Q(scope=Scope.DEVICE, device_id__in=list(levels)))


def _label(row, scope: str) -> str:
    if scope == Scope.GLOBAL:
        return "global"
    target = {Scope.CLIENT: "client", Scope.SITE: "site", Scope.GROUP: "group",
              Scope.DEVICE: "device"}[scope]
    return f"{target} #{getattr(row, f'{target}_id')}"


def effective_checks_for(device_ids: Iterable[int], *, include_disabled: bool = False,
                         extra_policy=None) -> dict[int, list[dict[str, Any]]]:
    """{device_id: [check dict with origin]} for the agent-side checks each device runs.

    Five queries however many devices: devices, group memberships, assignments, checks,
    overrides. `extra_policy` (a draft) is treated as if assigned wherever it is assigned.
    """
    device_ids = list(device_ids)
    levels = _device_levels(device_ids)
    if not levels:
        return {}
    level_q = _level_filter(levels)
    assignments = list(PolicyAssignment.objects.filter(level_q)
                       .filter(Q(policy__is_enabled=True) | Q(policy=extra_policy))
                       .select_related("policy"))
    policy_ids = {a.policy_id for a in assignments}
    checks_by_policy: dict[int, list[Check]] = defaultdict(list)
    for check in Check.objects.filter(policy_id__in=policy_ids).exclude(
            kind__in=list(SERVER_KINDS)).order_by("name", "id"):
        checks_by_policy[check.policy_id].append(check)
    check_ids = [c.pk for cs in checks_by_policy.values() for c in cs]
    overrides = list(CheckOverride.objects.filter(level_q, check_template_id__in=check_ids))
    result: dict[int, list[dict[str, Any]]] = {}
    for dev, lv in levels.items():
        mine = sorted((a for a in assignments if _matches(a, a.scope, lv, dev)),
                      key=lambda a: (_RANK[a.scope], a.pk))
        chosen: dict[str, dict[str, Any]] = {}
        for a in mine:
            for check in checks_by_policy.get(a.policy_id, []):
                prev = chosen.get(check.name)
                entry = {"id": check.pk, "name": check.name, "kind": check.kind,
                         "config": dict(check.config or {}), "enabled": check.is_enabled,
                         "interval_seconds": check.interval_seconds,
                         "fail_after": check.fail_after, "recover_after": check.recover_after,
                         "policy_id": a.policy_id, "policy": a.policy.name,
                         "version": a.policy.version, "scope": a.scope,
                         "origin": f"{a.policy.name} ({_label(a, a.scope)})",
                         "replaces": None, "overrides": []}
                if prev is not None:
                    if prev["id"] == check.pk:
                        prev.update(scope=a.scope, origin=entry["origin"])
                        continue
                    entry["replaces"] = prev["origin"]
                chosen[check.name] = entry
        by_id = {e["id"]: e for e in chosen.values()}
        for o in sorted((o for o in overrides if o.check_template_id in by_id
                         and _matches(o, o.scope, lv, dev)), key=lambda o: _RANK[o.scope]):
            entry = by_id[o.check_template_id]
            if o.is_enabled is not None:
                entry["enabled"] = o.is_enabled
            entry["config"].update(o.config or {})
            entry["overrides"].append(_label(o, o.scope))
        result[dev] = [e for e in chosen.values() if include_disabled or e["enabled"]]
    return result


def server_checks_for_device(device_id: int) -> list[Check]:
    return list(Check.objects.filter(device_id=device_id, kind__in=list(SERVER_KINDS))
                .select_related("policy"))


# --- What-if --------------------------------------------------------------------------------

def what_if(policy, *, days: int = 7, device_ids: list[int] | None = None,
            now: datetime | None = None) -> dict[str, Any]:
    """Replay `policy`'s metric checks (as it stands, enabled or not) over the stored
    metrics of the last `days` on the devices it is assigned to (or `device_ids`), with
    the same state machine as live evaluation, and count the alerts it would have opened.
    """
    from watchkeeper.agents.selectors import all_metric_names, all_metric_samples
    from watchkeeper.inventory.selectors import all_devices

    from .evaluate import METRIC_KINDS

    now = now or timezone.now()
    since = now - timedelta(days=days)
    if device_ids is None:
        device_ids = devices_of_policy(policy)
    effective = effective_checks_for(device_ids, extra_policy=policy)
    plan = {d: [c for c in cs if c["policy_id"] == policy.pk and c["kind"] in METRIC_KINDS]
            for d, cs in effective.items()}
    plan = {d: cs for d, cs in plan.items() if cs}
    names = dict(all_metric_names().values_list("id", "name"))
    wanted = {i for i, n in names.items() if n in ("cpu.percent", "mem.percent")
              or n.startswith(("disk.used_percent:", "disk.free_bytes:"))
              or any(c["config"].get("metric") == n for cs in plan.values() for c in cs)}
    per_device: dict[int, dict[str, Any]] = {}
    total = 0
    for dev, checks in plan.items():
        snapshots: dict[datetime, dict[str, float]] = defaultdict(dict)
        for metric, ts, value in (all_metric_samples()
                                  .filter(device_id=dev, metric_id__in=wanted,
                                          ts__gte=since, ts__lte=now)
                                  .order_by("ts").values_list("metric_id", "ts", "value")):
            snapshots[ts][names[metric]] = value
        opened, first = _replay(dev, checks, snapshots)
        if opened:
            per_device[dev] = {"alerts": sum(opened.values()), "by_check": opened,
                               "first_at": first}
            total += sum(opened.values())
    labels = dict(all_devices().filter(pk__in=list(per_device)).values_list("id", "name"))
    rows = sorted(({"device_id": d, "device": labels.get(d, f"#{d}"), **info}
                   for d, info in per_device.items()), key=lambda r: (-r["alerts"],
                                                                      r["device"]))
    return {"days": days, "devices_evaluated": len(plan), "alerts": total,
            "devices_alerting": len(rows), "devices": rows}


def _replay(device_id: int, checks: list[dict[str, Any]],
            snapshots: dict[datetime, dict[str, float]]) -> tuple[dict[str, int],
                                                                  datetime | None]:
    from .alerts import _advance
    from .evaluate import evaluate_metrics
    from .models import CheckState

    states = {c["id"]: CheckState(check_template_id=c["id"], state=State.OK) for c in checks}
    history: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    opened: dict[str, int] = defaultdict(int)
    first = None
    for ts in sorted(snapshots):
        values = snapshots[ts]
        averages = {}
        for metric in ("cpu.percent", "mem.percent"):
            if metric in values:
                history[metric].append((ts, values[metric]))
        for c in checks:
            if c["kind"] in (CheckKind.CPU, CheckKind.MEMORY):
                metric = "cpu.percent" if c["kind"] == CheckKind.CPU else "mem.percent"
                window = int(c["config"].get("window_minutes") or 5)
                points = [v for t, v in history[metric] if t > ts - timedelta(minutes=window)]
                if points:
                    averages[(metric, window)] = sum(points) / len(points)
        for result in evaluate_metrics(device_id, None, checks, values, averages, ts):
            check = next(c for c in checks if c["id"] == result.check_id)
            change = _advance(states[check["id"]], [result], check, ts)
            if change is not None and change.kind in ("open", "flap") and \
                    change.state.state != State.OK:
                opened[check["name"]] += 1
                first = first or ts
        for metric in history:
            cutoff = ts - timedelta(hours=2)
            if history[metric] and history[metric][0][0] < cutoff:
                history[metric] = [(t, v) for t, v in history[metric] if t >= cutoff]
    return dict(opened), first


def devices_of_policy(policy) -> list[int]:
    """Every device the policy's assignments reach."""
    from watchkeeper.inventory.selectors import all_devices

    q = Q(pk__in=[])
    for a in policy.assignments.all():
        if a.scope == Scope.GLOBAL:
            q = Q()
            break
        if a.scope == Scope.CLIENT:
            q |= Q(client_id=a.client_id)
        elif a.scope == Scope.SITE:
            q |= Q(site_id=a.site_id)
        elif a.scope == Scope.GROUP:
            q |= Q(monitoring_groups=a.group_id)
        else:
            q |= Q(pk=a.device_id)
    qs = all_devices().filter(q)
    if policy.client_id:
        qs = qs.filter(client_id=policy.client_id)
    return sorted(set(qs.values_list("id", flat=True)))
