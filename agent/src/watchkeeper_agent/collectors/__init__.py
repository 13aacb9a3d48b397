"""Pick the collector for this platform; all share the interface in base.Collector."""

from __future__ import annotations

import sys

from .base import UNKNOWN, Collector


def for_platform(name: str | None = None) -> Collector:
    name = name or sys.platform
    if name.startswith("linux"):
        from .linux import LinuxCollector

        return LinuxCollector()
    if name.startswith("win"):
        from .windows import WindowsCollector

        return WindowsCollector()
    if name == "darwin":
        from .macos import MacCollector

        return MacCollector()
    return Collector()


__all__ = ["UNKNOWN", "Collector", "for_platform"]
