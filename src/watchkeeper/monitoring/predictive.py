"""Predictive checks: problems seen before they happen.

- disk_forecast: a least-squares line through the stored trend of `disk.used_percent:<mount>`
  (hourly rollups over `lookback_days`, 5-minute rollups when the history is shorter)
  predicts when the disk is full; warning / critical when that is fewer than `days_warning`
  (14) / `days_critical` (3) days away. Value: days until full (empty when not growing).
  Config: mount (default: every mount reported), lookback_days (7), min_points (6).
- smart: SMART pre-failure from the device's "disks" inventory rows when the agent reports
  them (`smart_status`, `smart_attributes` in smartctl's terms): overall status failed, or a
  pre-fail attribute at or below its threshold, is critical; a non-zero reallocated /
  pending / offline-uncorrectable sector count is a warning. Disks without SMART data are
  skipped (the check reports nothing rather than a guess).
- Certificate expiry ahead is the TLS check's own job (days_warning / days_critical on the
  days left; see poller_checks.tls).

`run_predictive()` runs hourly (scheduler): for every device with disk rollups or SMART
data it takes the effective checks (policies.effective_checks_for), evaluates the
predictive ones and records the results in one batch per 1000 devices.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from .alerts import CheckResult, record_results
from .choices import CheckKind, State
from .rollups import FIVE_MIN, HOUR

DISK_METRIC = "disk.used_percent:"
SECTOR_ATTRIBUTES = {5: "Reallocated_Sector_Ct", 197: "Current_Pending_Sector",
                     198: "Offline_Uncorrectable"}
BATCH = 1000


@dataclass
class Forecast:
    slope_per_day: float        # percentage points per day
    current: float              # the fitted value now
    days_until_full: float | None


def fit(points: list[tuple[datetime, float]], now: datetime, full: float = 100.0
        ) -> Forecast | None:
    """Least-squares line through (time, value); None with fewer than 2 distinct times."""
    if len(points) < 2:
        return None
    xs = [(t - now).total_seconds() / 86400 for t, _ in points]
    ys = [v for _, v in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    current = my - slope * mx  # x = 0 is now
    if current >= full:
        return Forecast(slope, current, 0.0)
    if slope <= 1e-9:
        return Forecast(slope, current, None)
    return Forecast(slope, current, (full - current) / slope)


def _disk_series(device_ids: list[int], since: datetime
                 ) -> dict[int, dict[str, list[tuple[datetime, float]]]]:
    """{device: {mount: [(bucket, avg)]}} from hourly rollups, or 5-minute ones for
    device/mounts with too little hourly history."""
    from watchkeeper.agents.models import MetricName

    from .models_poller import MetricRollup

    names = dict(MetricName.objects.filter(name__startswith=DISK_METRIC)
                 .values_list("id", "name"))
    series: dict[int, dict[str, dict[int, list]]] = defaultdict(lambda: defaultdict(dict))
    if not names:
        return {}
    for dev, metric, res, bucket, count, total in (
            MetricRollup.objects.filter(device_id__in=device_ids, metric_id__in=list(names),
                                        resolution__in=[FIVE_MIN, HOUR], bucket__gte=since)
            .order_by("bucket")
            .values_list("device_id", "metric_id", "resolution", "bucket", "count", "total")):
        mount = names[metric][len(DISK_METRIC):]
        series[dev][mount].setdefault(res, []).append((bucket, total / count if count else 0))
    return {dev: {mount: by_res for mount, by_res in mounts.items()}
            for dev, mounts in series.items()}


def evaluate_disk_forecast(check: dict[str, Any], mounts: dict[str, dict[int, list]],
                           now: datetime) -> tuple[str, float | None, str] | None:
    cfg = check["config"] or {}
    min_points = int(cfg.get("min_points") or 6)
    warn = float(cfg.get("days_warning") or 14)
    crit = float(cfg.get("days_critical") or 3)
    wanted = cfg.get("mount")
    rank = {State.OK: 0, State.WARNING: 1, State.CRITICAL: 2}
    candidates: list[tuple[str, float | None, str]] = []
    for mount, by_res in sorted(mounts.items()):
        if wanted and mount != wanted:
            continue
        points = by_res.get(HOUR, [])
        if len(points) < min_points:
            points = by_res.get(FIVE_MIN, [])
        if len(points) < min_points:
            continue
        forecast = fit(points, now)
        if forecast is None:
            continue
        days = forecast.days_until_full
        if days is None:
            state, msg = State.OK, f"{mount}: {forecast.current:.0f}% used, not growing"
        else:
            state = (State.CRITICAL if days <= crit else State.WARNING if days <= warn
                     else State.OK)
            msg = (f"{mount}: {forecast.current:.0f}% used, growing "
                   f"{forecast.slope_per_day:.2f} points/day, full in {days:.1f} days")
        candidates.append((state, days, msg))
    if not candidates:
        return None
    # The worst mount: highest state, then the soonest full.
    return max(candidates, key=lambda c: (rank[c[0]], -(c[1] if c[1] is not None
                                                        else math.inf)))


def _smart_disks(section: Any) -> list[dict[str, Any]]:
    rows = section if isinstance(section, list) else []
    return [r for r in rows if isinstance(r, dict)
            and ("smart_status" in r or "smart_attributes" in r)]


def evaluate_smart(check: dict[str, Any], disks: list[dict[str, Any]]
                   ) -> tuple[str, float | None, str] | None:
    disks = _smart_disks(disks)
    if not disks:
        return None
    problems: list[tuple[str, str]] = []
    for disk in disks:
        label = str(disk.get("device") or disk.get("name") or disk.get("mountpoint") or "disk")
        status = str(disk.get("smart_status", "")).strip().upper()
        if status in ("FAILED", "FAILING", "BAD", "FALSE"):
            problems.append((State.CRITICAL, f"{label}: SMART overall status {status}"))
        for attr in disk.get("smart_attributes") or []:
            if not isinstance(attr, dict):
                continue
            try:
                aid = int(attr.get("id", 0))
                value, thresh = int(attr.get("value", 0)), int(attr.get("thresh", 0))
                raw = int(str(attr.get("raw", 0)).split()[0])
            except (TypeError, ValueError):
                continue
            name = attr.get("name") or SECTOR_ATTRIBUTES.get(aid) or f"attribute {aid}"
            prefail = str(attr.get("type", "")).lower().replace("_", "-") == "pre-fail" or \
                bool(attr.get("prefailure"))
            if (prefail and thresh > 0 and value <= thresh) or attr.get("when_failed") in (
                    "FAILING_NOW", "now"):
                problems.append((State.CRITICAL, f"{label}: {name} at {value} "
                                                 f"(threshold {thresh}): pre-failure"))
            elif aid in SECTOR_ATTRIBUTES and raw > 0:
                problems.append((State.WARNING, f"{label}: {name} = {raw}"))
    if not problems:
        return State.OK, None, f"SMART healthy on {len(disks)} disk(s)"
    state = State.CRITICAL if any(s == State.CRITICAL for s, _ in problems) else State.WARNING
    return state, float(len(problems)), "; ".join(m for _, m in problems)[:500]


def predictive_results(device_ids: list[int], now: datetime) -> list[CheckResult]:
    from watchkeeper.inventory.models import Device, DeviceSection

    from .policies import effective_checks_for

    effective = effective_checks_for(device_ids)
    wanted = {dev: [c for c in checks if c["kind"] in (CheckKind.DISK_FORECAST,
                                                        CheckKind.SMART)]
              for dev, checks in effective.items()}
    wanted = {dev: checks for dev, checks in wanted.items() if checks}
    if not wanted:
        return []
    clients = dict(Device.objects.filter(pk__in=list(wanted)).values_list("id", "client_id"))
    lookback = max(int((c["config"] or {}).get("lookback_days") or 7)
                   for cs in wanted.values() for c in cs)
    disks = _disk_series([d for d, cs in wanted.items()
                          if any(c["kind"] == CheckKind.DISK_FORECAST for c in cs)],
                         now - timedelta(days=lookback))
    smart_devices = [d for d, cs in wanted.items() if any(c["kind"] == CheckKind.SMART
                                                          for c in cs)]
    sections = dict(DeviceSection.objects.filter(device_id__in=smart_devices, section="disks")
                    .values_list("device_id", "data")) if smart_devices else {}
    results = []
    for dev, checks in wanted.items():
        for check in checks:
            if check["kind"] == CheckKind.DISK_FORECAST:
                days = int((check["config"] or {}).get("lookback_days") or 7)
                since = now - timedelta(days=days)
                mounts = {m: {r: [p for p in pts if p[0] >= since] for r, pts in by.items()}
                          for m, by in disks.get(dev, {}).items()}
                outcome = evaluate_disk_forecast(check, mounts, now)
            else:
                outcome = evaluate_smart(check, sections.get(dev) or [])
            if outcome is None:
                continue
            state, value, message = outcome
            results.append(CheckResult(check_id=check["id"], device_id=dev,
                                       client_id=clients.get(dev), state=state, value=value,
                                       message=message, observed_at=now))
    return results


def candidate_devices(now: datetime, lookback_days: int = 30) -> list[int]:
    from watchkeeper.agents.models import MetricName
    from watchkeeper.inventory.models import DeviceSection

    from .models_poller import MetricRollup

    disk_ids = list(MetricName.objects.filter(name__startswith=DISK_METRIC)
                    .values_list("id", flat=True))
    with_disks = set(MetricRollup.objects.filter(
        metric_id__in=disk_ids, resolution=HOUR,
        bucket__gte=now - timedelta(days=lookback_days)).values_list(
        "device_id", flat=True).distinct()) if disk_ids else set()
    with_disks |= set(MetricRollup.objects.filter(
        metric_id__in=disk_ids, resolution=FIVE_MIN,
        bucket__gte=now - timedelta(days=2)).values_list(
        "device_id", flat=True).distinct()) if disk_ids else set()
    with_smart = set(DeviceSection.objects.filter(section="disks")
                     .values_list("device_id", flat=True))
    return sorted(with_disks | with_smart)


def run_predictive(now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    devices = candidate_devices(now)
    counters: dict[str, int] = {"devices": len(devices)}
    for start in range(0, len(devices), BATCH):
        results = predictive_results(devices[start:start + BATCH], now)
        counters["readings"] = counters.get("readings", 0) + len(results)
        if results:
            for key, n in record_results(results, now).items():
                counters[key] = counters.get(key, 0) + n
    return counters
