"""Agent-side checks, evaluated from what agents reported.

Metric checks (disk, CPU, memory, any metric) read the samples the agents app stored: the
evaluation task takes the slice of samples newer than its cursor (one indexed range query),
finds the effective checks of the devices in it (policies.effective_checks_for), and turns
each into a CheckResult for alerts.record_results. CPU and memory are judged on the average
over their window (one aggregate query for all devices of the batch). Service, process and
pending-reboot checks read the device's last inventory; agent-offline follows the agents
app's agent.offline / agent.online events; script checks follow command.finished.

Thresholds: `warning` / `critical` numbers compared with `op` (">=" default, "<=" for
"less is worse" such as free space).
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg
from django.utils import timezone

from .alerts import CheckResult
from .choices import CheckKind, State

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}

# Which config keys each kind needs (server-side kinds are validated by the poller's own
# config checks; here only their presence of a target).
REQUIRED: dict[str, tuple[str, ...]] = {
    CheckKind.DISK: (), CheckKind.CPU: (), CheckKind.MEMORY: (),
    CheckKind.METRIC: ("metric",), CheckKind.SERVICE: (),
    CheckKind.PROCESS: ("process",), CheckKind.REBOOT: (), CheckKind.AGENT_OFFLINE: (),
    CheckKind.SCRIPT: ("script_id",),
}


def validate_config(kind: str, config: dict[str, Any]) -> list[str]:
    errors = []
    if kind not in CheckKind.values:
        return [f"Unknown check kind {kind!r}."]
    if not isinstance(config, dict):
        return ["The configuration must be an object."]
    for key in REQUIRED.get(kind, ()):
        if config.get(key) in (None, ""):
            errors.append(f"A {kind} check needs '{key}'.")
    for key in ("warning", "critical", "free_warning_bytes", "free_critical_bytes",
                "window_minutes"):
        if key in config and config[key] is not None:
            try:
                float(config[key])
            except (TypeError, ValueError):
                errors.append(f"'{key}' must be a number.")
    if kind == CheckKind.SERVICE and not config.get("automatic") and \
            config.get("service") in (None, ""):
        errors.append("A service check needs 'service' (or 'automatic': true).")
    if config.get("op") not in (None, *OPS):
        errors.append(f"'op' must be one of {', '.join(OPS)}.")
    return errors


def judge(value: float | None, config: dict[str, Any], *, default_warning=None,
          default_critical=None) -> str:
    """ok / warning / critical for one value against the config's thresholds."""
    if value is None:
        return State.UNKNOWN
    op = OPS[config.get("op") or ">="]
    critical = config.get("critical", default_critical)
    warning = config.get("warning", default_warning)
    if critical is not None and op(value, float(critical)):
        return State.CRITICAL
    if warning is not None and op(value, float(warning)):
        return State.WARNING
    return State.OK


DEFAULTS = {CheckKind.DISK: (85.0, 95.0), CheckKind.CPU: (90.0, 98.0),
            CheckKind.MEMORY: (90.0, 98.0)}


def _worst(states: Iterable[str]) -> str:
    from .choices import STATE_RANK

    return max(states, key=lambda s: STATE_RANK[s], default=State.OK)


def evaluate_disk(values: dict[str, float], config: dict[str, Any]) -> tuple[str, float | None,
                                                                             str]:
    """Worst mount (or the configured mount): used % and, if set, free bytes."""
    mount = config.get("mount")
    warn, crit = DEFAULTS[CheckKind.DISK]
    found: list[tuple[str, float | None, str]] = []
    for name, value in values.items():
        if not name.startswith("disk.used_percent:"):
            continue
        mp = name.split(":", 1)[1]
        if mount and mp != mount:
            continue
        state = judge(value, {k: v for k, v in config.items() if k in ("warning", "critical")},
                      default_warning=warn, default_critical=crit)
        msg = f"{mp} {value:.1f}% used"
        free = values.get(f"disk.free_bytes:{mp}")
        if free is not None and (config.get("free_warning_bytes") is not None
                                 or config.get("free_critical_bytes") is not None):
            fstate = judge(free, {"op": "<=", "warning": config.get("free_warning_bytes"),
                                  "critical": config.get("free_critical_bytes")})
            state = _worst([state, fstate])
            msg += f", {free / 2**30:.1f} GiB free"
        found.append((state, value, msg))
    if not found:
        return State.UNKNOWN if mount else State.OK, None, (
            f"no data for {mount}" if mount else "no disks reported")
    from .choices import STATE_RANK

    found.sort(key=lambda f: (STATE_RANK[f[0]], f[1] or 0))
    return found[-1]


def evaluate_metrics(device_id: int, client_id: int | None, checks: list[dict[str, Any]],
                     values: dict[str, float], averages: dict[tuple[str, int], float],
                     at: datetime) -> list[CheckResult]:
    """Results of the metric checks of one device from its newest values (and the window
    averages computed for CPU/memory)."""
    results = []
    for check in checks:
        kind, cfg = check["kind"], check["config"]
        if kind == CheckKind.DISK:
            if not any(n.startswith("disk.used_percent:") for n in values):
                continue
            state, value, msg = evaluate_disk(values, cfg)
        elif kind in (CheckKind.CPU, CheckKind.MEMORY):
            metric = "cpu.percent" if kind == CheckKind.CPU else "mem.percent"
            window = int(cfg.get("window_minutes") or 5)
            value = averages.get((metric, window), values.get(metric))
            if value is None:
                continue
            warn, crit = DEFAULTS[kind]
            state = judge(value, cfg, default_warning=warn, default_critical=crit)
            msg = f"{metric} {value:.1f}% average over {window} min"
        elif kind == CheckKind.METRIC:
            value = values.get(cfg["metric"])
            if value is None:
                continue
            state = judge(value, cfg)
            msg = f"{cfg['metric']} = {value:g}"
        else:
            continue
        results.append(CheckResult(check_id=check["id"], device_id=device_id,
                                   client_id=client_id, state=state, value=value,
                                   message=msg, observed_at=at))
    return results


def evaluate_inventory(device_id: int, client_id: int | None, checks: list[dict[str, Any]],
                       sections: dict[str, Any], reboot_required: bool | None,
                       at: datetime) -> list[CheckResult]:
    """Service / process / pending-reboot checks from the device's last inventory."""
    results = []
    for check in checks:
        kind, cfg = check["kind"], check["config"]
        bad = cfg.get("severity") or State.CRITICAL
        if kind == CheckKind.SERVICE and cfg.get("automatic") and not cfg.get("service"):
            services = sections.get("services")
            if services is None:
                continue
            ignored = {str(n).lower() for n in cfg.get("ignore") or []}
            stopped = sorted(str(s.get("name")) for s in _rows(services)
                             if s.get("enabled") is True
                             and str(s.get("name", "")).lower() not in ignored
                             and str(s.get("state", "")).lower() not in RUNNING_STATES)
            state = bad if stopped else State.OK
            msg = (f"automatic service(s) not running: {', '.join(stopped[:5])}"
                   + (f" and {len(stopped) - 5} more" if len(stopped) > 5 else "")
                   if stopped else "every automatic service is running")
        elif kind == CheckKind.SERVICE:
            services = sections.get("services")
            if services is None:
                continue
            name = str(cfg["service"]).lower()
            row = next((s for s in _rows(services) if str(s.get("name", "")).lower() == name),
                       None)
            if row is None:
                state = State.OK if cfg.get("missing_ok") else bad
                msg = f"service {cfg['service']} not installed"
            else:
                running = str(row.get("state", "")).lower() in ("running", "active")
                state = State.OK if running else bad
                msg = f"service {cfg['service']} is {row.get('state', 'unknown')}"
        elif kind == CheckKind.PROCESS:
            procs = sections.get("processes") or sections.get("ports")
            if procs is None:
                continue
            name = str(cfg["process"]).lower()
            present = any(str(p.get("process") or p.get("name") or "").lower() == name
                          for p in _rows(procs))
            state = State.OK if present else bad
            msg = f"process {cfg['process']} {'present' if present else 'not running'}"
        elif kind == CheckKind.REBOOT:
            if reboot_required is None:
                continue
            state = (cfg.get("severity") or State.WARNING) if reboot_required else State.OK
            msg = "reboot pending" if reboot_required else "no reboot pending"
        else:
            continue
        results.append(CheckResult(check_id=check["id"], device_id=device_id,
                                   client_id=client_id, state=state, message=msg,
                                   observed_at=at))
    return results


# States of a service that is up (systemd "running", or "exited" for a one-shot unit
# that ran; Windows "running").
RUNNING_STATES = frozenset({"running", "active", "exited"})


def _rows(section: Any) -> list[dict[str, Any]]:
    if isinstance(section, dict):
        section = section.get("items") or section.get("rows") or []
    return [r for r in section if isinstance(r, dict)] if isinstance(section, list) else []


METRIC_KINDS = {CheckKind.DISK, CheckKind.CPU, CheckKind.MEMORY, CheckKind.METRIC}
INVENTORY_KINDS = {CheckKind.SERVICE, CheckKind.PROCESS, CheckKind.REBOOT}


def evaluate_devices(device_ids: list[int], at: datetime | None = None) -> list[CheckResult]:
    """Evaluate every agent-side metric and inventory check of these devices from their
    newest data (bulk queries: samples, averages, sections, effective checks)."""
    from watchkeeper.agents.selectors import all_metric_names, all_metric_samples
    from watchkeeper.inventory.selectors import all_device_sections, all_devices

    from .policies import effective_checks_for

    at = at or timezone.now()
    if not device_ids:
        return []
    effective = effective_checks_for(device_ids)
    devices = dict(all_devices().filter(pk__in=device_ids).values_list("id", "client_id"))
    reboot = dict(all_devices().filter(pk__in=device_ids).values_list("id",
                                                                       "reboot_required"))
    names = dict(all_metric_names().values_list("id", "name"))
    since = at - timedelta(minutes=30)
    latest: dict[int, dict[str, tuple[datetime, float]]] = defaultdict(dict)
    for dev, metric, ts, value in (all_metric_samples()
                                   .filter(device_id__in=device_ids, ts__gte=since, ts__lte=at)
                                   .values_list("device_id", "metric_id", "ts", "value")):
        name = names.get(metric)
        if name is None:
            continue
        prev = latest[dev].get(name)
        if prev is None or ts >= prev[0]:
            latest[dev][name] = (ts, value)
    windows: set[tuple[str, int]] = set()
    for checks in effective.values():
        for c in checks:
            if c["kind"] in (CheckKind.CPU, CheckKind.MEMORY):
                metric = "cpu.percent" if c["kind"] == CheckKind.CPU else "mem.percent"
                windows.add((metric, int(c["config"].get("window_minutes") or 5)))
    averages: dict[int, dict[tuple[str, int], float]] = defaultdict(dict)
    ids_by_name = {v: k for k, v in names.items()}
    for metric, window in windows:
        if metric not in ids_by_name:
            continue
        for row in (all_metric_samples().filter(device_id__in=device_ids,
                                                metric_id=ids_by_name[metric],
                                                ts__gte=at - timedelta(minutes=window),
                                                ts__lte=at)
                    .values("device_id").annotate(avg=Avg("value"))):
            averages[row["device_id"]][(metric, window)] = row["avg"]
    need_inventory = [d for d, cs in effective.items()
                      if any(c["kind"] in INVENTORY_KINDS for c in cs)]
    sections: dict[int, dict[str, Any]] = defaultdict(dict)
    if need_inventory:
        for dev, name, data in all_device_sections().filter(
                device_id__in=need_inventory, section__in=["services", "processes", "ports"]
        ).values_list("device_id", "section", "data"):
            sections[dev][name] = data
    results: list[CheckResult] = []
    for dev in device_ids:
        checks = effective.get(dev, [])
        if not checks:
            continue
        client_id = devices.get(dev)
        values = {n: v for n, (_, v) in latest.get(dev, {}).items()}
        results += evaluate_metrics(dev, client_id,
                                    [c for c in checks if c["kind"] in METRIC_KINDS],
                                    values, averages.get(dev, {}), at)
        results += evaluate_inventory(dev, client_id,
                                      [c for c in checks if c["kind"] in INVENTORY_KINDS],
                                      sections.get(dev, {}), reboot.get(dev), at)
    return results


def devices_with_new_samples(since: datetime, until: datetime) -> list[int]:
    from watchkeeper.agents.selectors import all_metric_samples

    return sorted(set(all_metric_samples().filter(ts__gt=since, ts__lte=until)
                      .values_list("device_id", flat=True).distinct()))


def run_evaluation(now: datetime | None = None) -> dict[str, int]:
    """The scheduled evaluation: take the slice of samples since the cursor (claimed by a
    compare-and-set on the cursor, so two workers never evaluate the same slice), evaluate
    the devices in it, record the results."""
    from .alerts import record_results
    from .models import EvalCursor

    now = now or timezone.now()
    cursor, _ = EvalCursor.objects.get_or_create(
        name="agent-metrics", defaults={"position": now - timedelta(minutes=5)})
    if not EvalCursor.objects.filter(pk=cursor.pk, position=cursor.position).update(
            position=now):
        return {"devices": 0, "claimed": 0}
    device_ids = devices_with_new_samples(cursor.position, now)
    counters: dict[str, int] = {"devices": len(device_ids), "claimed": 1}
    for start in range(0, len(device_ids), 1000):
        results = evaluate_devices(device_ids[start:start + 1000], now)
        for k, v in record_results(results, now).items():
            counters[k] = counters.get(k, 0) + v
    return counters


# --- Event-driven checks ---------------------------------------------------------------------

def offline_results(device_id: int, client_id: int | None, offline: bool,
                    at: datetime | None = None) -> list[CheckResult]:
    from .policies import effective_checks_for

    at = at or timezone.now()
    checks = [c for c in effective_checks_for([device_id]).get(device_id, [])
              if c["kind"] == CheckKind.AGENT_OFFLINE]
    return [CheckResult(check_id=c["id"], device_id=device_id, client_id=client_id,
                        state=(c["config"].get("severity") or State.CRITICAL) if offline
                        else State.OK,
                        message="agent offline: no check-in" if offline else "agent online",
                        observed_at=at) for c in checks]


# Nagios plugin convention for script exit codes.
EXIT_STATES = {0: State.OK, 1: State.WARNING, 2: State.CRITICAL}


def script_results(device_id: int, client_id: int | None, script_id: int,
                   exit_code: int | None, output: str, at: datetime | None = None
                   ) -> list[CheckResult]:
    from .policies import effective_checks_for

    at = at or timezone.now()
    checks = [c for c in effective_checks_for([device_id]).get(device_id, [])
              if c["kind"] == CheckKind.SCRIPT and str(c["config"].get("script_id")) ==
              str(script_id)]
    results = []
    for c in checks:
        mapping = {int(k): v for k, v in (c["config"].get("exit_codes") or {}).items()}
        state = mapping.get(exit_code, EXIT_STATES.get(exit_code, State.UNKNOWN)) \
            if exit_code is not None else State.UNKNOWN
        first_line = (output or "").strip().splitlines()[0][:200] if output.strip() else ""
        results.append(CheckResult(
            check_id=c["id"], device_id=device_id, client_id=client_id, state=state,
            value=float(exit_code) if exit_code is not None else None,
            message=first_line or f"exit code {exit_code}", output=output, observed_at=at))
    return results

