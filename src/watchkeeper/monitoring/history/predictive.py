"""Predictive checks: problems seen before they happen.

- disk_forecast: a least-squares line through the stored trend of `disk.used_percent:<mount>`
  (hourly rollups over `lookback_days`, 5-minute rollups when the history is shorter)
  predicts when the disk is full; warning / critical when that is fewer than `days_warning`
  (14) / `days_critical` (3) days away. Value: days until full (empty when not growing).
  Config: mount (default: every mount reported), lookback_days (7), min_points (6).
- smart: SMART pre-failure from the device's "drives" inventory section, which the agent
  fills from smartctl (see agent collectors/smart.py). Critical: overall SMART status
  failed; a pre-fail attribute at or below its (non-zero) threshold; an NVMe critical
  warning or available spare below its threshold. Warning: a non-zero reallocated /
  pending / offline-uncorrectable sector count; an attribute smartctl marks as failed in
  the past, or an old-age one failing now; NVMe media errors; NVMe percentage used at or
  above 100. Drives smartctl could not read are named but decide nothing; a device with
  no readable drive gets no reading (nothing rather than a guess).
- Certificate expiry ahead is the TLS check's own job (days_warning / days_critical on the
  days left; see poller_checks.tls).

`run_predictive()` runs hourly (scheduler): for every device with disk rollups or a drives
section it takes the effective checks (policies.effective_checks_for), evaluates the
predictive ones and records the results in one batch per 1000 devices.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from ..alerts import CheckResult, record_results
from ..choices import CheckKind, State
from .actions import FIVE_MIN, HOUR

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
    from watchkeeper.agents.selectors import all_metric_names

    from .models import MetricRollup

    names = dict(all_metric_names().filter(name__startswith=DISK_METRIC)
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


NVME_WARNING_BITS = {
    0: "available spare below threshold", 1: "temperature outside its limits",
    2: "reliability degraded by media or internal errors", 3: "media in read-only mode",
    4: "volatile memory backup failed", 5: "persistent memory region read-only",
}


@dataclass
class Finding:
    state: str          # State.CRITICAL or State.WARNING
    message: str
    attribute: int | None = None   # the SMART attribute id it is about, if any


def drive_label(drive: dict[str, Any]) -> str:
    what = " ".join(str(drive[k]) for k in ("model", "serial")
                    if drive.get(k) not in (None, "", "unknown"))
    name = str(drive.get("device") or "drive")
    return f"{name} ({what})" if what else name


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def assess_drive(drive: dict[str, Any]) -> list[Finding]:
    """What is wrong with one drive of the "drives" section, worst first. The device page
    highlights the same findings that the smart check alerts on."""
    found: list[Finding] = []
    if drive.get("smart_status") == "failed":
        found.append(Finding(State.CRITICAL, "SMART overall health FAILED"))
    for attr in drive.get("attributes") or []:
        if not isinstance(attr, dict):
            continue
        aid, value, thresh = (_count(attr.get(k)) for k in ("id", "value", "thresh"))
        if aid is None or value is None or thresh is None:
            continue
        name = attr.get("name") or SECTOR_ATTRIBUTES.get(aid) or f"attribute {aid}"
        raw = _count(attr.get("raw"))
        failing_now = attr.get("when_failed") == "now" or (thresh > 0 and value <= thresh)
        if attr.get("prefailure") and thresh > 0 and value <= thresh:
            found.append(Finding(State.CRITICAL, f"{name} at {value} (threshold {thresh}): "
                                                 "pre-failure", aid))
        elif failing_now:
            found.append(Finding(State.WARNING, f"{name} at {value} (threshold {thresh}): "
                                                "old-age attribute past its limit", aid))
        elif attr.get("when_failed") == "past":
            found.append(Finding(State.WARNING, f"{name} fell to its threshold ({thresh}) "
                                                "in the past", aid))
        elif aid in SECTOR_ATTRIBUTES and raw:
            found.append(Finding(State.WARNING, f"{name} = {raw}", aid))
    warning = _count(drive.get("critical_warning"))
    if warning:
        bits = [text for bit, text in NVME_WARNING_BITS.items() if warning & (1 << bit)]
        found.append(Finding(State.CRITICAL, f"NVMe critical warning 0x{warning:02x}: "
                                             f"{', '.join(bits) or 'reserved bits set'}"))
    spare, spare_min = (_count(drive.get(k)) for k in ("available_spare",
                                                       "available_spare_threshold"))
    if spare is not None and spare_min and spare < spare_min and not (warning or 0) & 1:
        found.append(Finding(State.CRITICAL, f"available spare {spare}% below its threshold "
                                             f"{spare_min}%"))
    media_errors = _count(drive.get("media_errors"))
    if media_errors:
        found.append(Finding(State.WARNING, f"{media_errors} media and data integrity errors"))
    used = _count(drive.get("percentage_used"))
    if used is not None and used >= 100:
        found.append(Finding(State.WARNING, f"{used}% of rated endurance used"))
    found.sort(key=lambda f: f.state != State.CRITICAL)
    return found


def _readable(drive: Any) -> bool:
    return isinstance(drive, dict) and drive.get("smart_status") in ("passed", "failed")


def evaluate_smart(check: dict[str, Any], drives: list[dict[str, Any]]
                   ) -> tuple[str, float | None, str] | None:
    rows = [d for d in drives if isinstance(d, dict)] if isinstance(drives, list) else []
    readable = [d for d in rows if _readable(d)]
    if not readable:
        return None
    # One entry per drive with findings ("label: finding, finding"), critical drives first,
    # so the alert names each drive (model and serial: the one to pull) once.
    per_drive = [(drive_label(d), found) for d in readable if (found := assess_drive(d))]
    per_drive.sort(key=lambda item: item[1][0].state != State.CRITICAL)
    unread = [str(d.get("device") or "drive") for d in rows if not _readable(d)]
    note = f"; not readable: {', '.join(unread)}" if unread else ""
    if not per_drive:
        return State.OK, None, f"SMART healthy on {len(readable)} drive(s){note}"[:500]
    findings = [f for _, found in per_drive for f in found]
    state = State.CRITICAL if any(f.state == State.CRITICAL for f in findings) else State.WARNING
    text = "; ".join(f"{label}: {', '.join(f.message for f in found)}"
                     for label, found in per_drive)
    return state, float(len(findings)), (text + note)[:500]


def predictive_results(device_ids: list[int], now: datetime) -> list[CheckResult]:
    from watchkeeper.inventory.selectors import all_device_sections, all_devices

    from ..policies import effective_checks_for

    effective = effective_checks_for(device_ids)
    wanted = {dev: [c for c in checks if c["kind"] in (CheckKind.DISK_FORECAST,
                                                        CheckKind.SMART)]
              for dev, checks in effective.items()}
    wanted = {dev: checks for dev, checks in wanted.items() if checks}
    if not wanted:
        return []
    clients = dict(all_devices().filter(pk__in=list(wanted)).values_list("id", "client_id"))
    lookback = max(int((c["config"] or {}).get("lookback_days") or 7)
                   for cs in wanted.values() for c in cs)
    disks = _disk_series([d for d, cs in wanted.items()
                          if any(c["kind"] == CheckKind.DISK_FORECAST for c in cs)],
                         now - timedelta(days=lookback))
    smart_devices = [d for d, cs in wanted.items() if any(c["kind"] == CheckKind.SMART
                                                          for c in cs)]
    sections = dict(all_device_sections().filter(device_id__in=smart_devices, section="drives")
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
    from watchkeeper.agents.selectors import all_metric_names
    from watchkeeper.inventory.selectors import all_device_sections

    from .models import MetricRollup

    disk_ids = list(all_metric_names().filter(name__startswith=DISK_METRIC)
                    .values_list("id", flat=True))
    with_disks = set(MetricRollup.objects.filter(
        metric_id__in=disk_ids, resolution=HOUR,
        bucket__gte=now - timedelta(days=lookback_days)).values_list(
        "device_id", flat=True).distinct()) if disk_ids else set()
    with_disks |= set(MetricRollup.objects.filter(
        metric_id__in=disk_ids, resolution=FIVE_MIN,
        bucket__gte=now - timedelta(days=2)).values_list(
        "device_id", flat=True).distinct()) if disk_ids else set()
    with_smart = set(all_device_sections().filter(section="drives")
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
