"""The recent history of an alert's check, for the alert's page: the values behind it over
the last day (a network check's runs, or the agent metric a disk / CPU / memory / metric
check judges) as points, drawn server-side as an SVG line (no script) with a table as its
text alternative."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.utils import timezone

from .choices import SERVER_KINDS, CheckKind

WIDTH, HEIGHT, PAD = 640, 140, 6


def _metric_of(alert) -> tuple[str, str] | None:
    check = alert.check_template
    kind, cfg = check.kind, check.config or {}
    if kind == CheckKind.CPU:
        return "cpu.percent", "CPU %"
    if kind == CheckKind.MEMORY:
        return "mem.percent", "Memory used %"
    if kind == CheckKind.DISK:
        mount = cfg.get("mount") or (re.match(r"(\S+) [\d.]+% used", alert.summary or "")
                                     or [None, None])[1]
        return (f"disk.used_percent:{mount}", f"{mount} used %") if mount else None
    if kind == CheckKind.METRIC and cfg.get("metric"):
        from .check_forms import metric_label

        return cfg["metric"], metric_label(cfg["metric"])
    return None


def history(alert, hours: int = 24) -> dict[str, Any] | None:
    from .history import actions as rollups

    if alert.check_template is None:
        return None
    until = timezone.now()
    since = until - timedelta(hours=hours)
    if alert.check_template.kind in SERVER_KINDS:
        _, points = rollups.check_series(alert.check_template_id, since, until)
        values = [(p.ts, p.avg) for p in points if p.avg is not None]
        label = {"tls": "days left"}.get(alert.check_template.kind, "response time (ms)")
    else:
        metric = _metric_of(alert)
        if metric is None or alert.device_id is None:
            return None
        # The raw readings (a day of one metric of one device is at most a few thousand):
        # rolled-up buckets may not cover a history the agent sent late.
        _, points = rollups.series(alert.device_id, metric[0], since, until, resolution=0)
        values = [(p.ts, p.avg) for p in points]
        step = max(1, len(values) // 240)
        values = values[::step]
        label = metric[1]
    if not values:
        return {"label": label, "points": [], "svg": None, "hours": hours}
    return {"label": label, "points": values[-48:], "svg": _polyline(values, since, until),
            "hours": hours, "min": min(v for _, v in values), "max": max(v for _, v in values)}


def _polyline(values, since, until) -> dict[str, Any]:
    span = (until - since).total_seconds() or 1
    low = min(v for _, v in values)
    high = max(v for _, v in values)
    if high == low:
        high, low = high + 1, low - 1
    coords = []
    for ts, v in values:
        x = PAD + (WIDTH - 2 * PAD) * (ts - since).total_seconds() / span
        y = PAD + (HEIGHT - 2 * PAD) * (1 - (v - low) / (high - low))
        coords.append(f"{x:.1f},{y:.1f}")
    return {"points": " ".join(coords), "width": WIDTH, "height": HEIGHT,
            "low": low, "high": high}
