"""Shared pieces of the server-side checks: the outcome type, config helpers, thresholds.

A check is a plain coroutine `run(config, ctx) -> Outcome`: it takes the check's validated
config (a dict as stored in the check's JSON) and a `PollerContext` holding the resources
shared by all checks of one poller process (the ICMP socket, HTTP clients), and never
touches the database. Mapping an outcome to the alert machinery is the poller's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

OK, WARNING, CRITICAL, UNKNOWN = "ok", "warning", "critical", "unknown"
_RANK = {OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3}


@dataclass
class Outcome:
    """What one run of a check observed."""

    state: str
    message: str
    value: float | None = None  # the main measurement (latency ms, days left, ...)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.state not in _RANK:
            raise ValueError(f"unknown state {self.state!r}")
        if self.value is not None and not math.isfinite(self.value):
            self.value = None


def worst(*states: str) -> str:
    """The most severe of several states (critical > warning > unknown > ok)."""
    return max(states, key=_RANK.__getitem__) if states else OK


class ConfigError(ValueError):
    """A check config that cannot run; the message names the field."""


def _num(config: dict, key: str, default, *, minimum=None, maximum=None, kind=float):
    value = config.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{key}: must be a number")
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: must be a number") from None
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{key}: must be a finite number")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}: must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}: must be at most {maximum}")
    return value


def number(config: dict, key: str, default=None, **kw) -> float | None:
    return _num(config, key, default, kind=float, **kw)


def integer(config: dict, key: str, default=None, **kw) -> int | None:
    return _num(config, key, default, kind=int, **kw)


def text(config: dict, key: str, default: str | None = None, *, required: bool = False,
         max_length: int = 2000, choices: tuple[str, ...] | None = None) -> str | None:
    value = config.get(key, default)
    if value is None or value == "":
        if required:
            raise ConfigError(f"{key}: required")
        return default
    if not isinstance(value, str):
        raise ConfigError(f"{key}: must be text")
    value = value.strip()
    if len(value) > max_length:
        raise ConfigError(f"{key}: at most {max_length} characters")
    if choices is not None and value not in choices:
        raise ConfigError(f"{key}: one of {', '.join(choices)}")
    return value


def boolean(config: dict, key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: must be true or false")
    return value


def host(config: dict, key: str = "host") -> str:
    value = text(config, key, required=True, max_length=253)
    if any(c.isspace() for c in value) or "/" in value:
        raise ConfigError(f"{key}: not a host name or address")
    return value


def thresholds(config: dict, prefix: str, *, higher_is_worse: bool = True,
               minimum: float = 0) -> dict:
    """`<prefix>_warning` / `<prefix>_critical`, both optional, in the right order."""
    warn = number(config, f"{prefix}_warning", None, minimum=minimum)
    crit = number(config, f"{prefix}_critical", None, minimum=minimum)
    if warn is not None and crit is not None:
        if higher_is_worse and warn > crit:
            raise ConfigError(f"{prefix}_warning: must not exceed {prefix}_critical")
        if not higher_is_worse and warn < crit:
            raise ConfigError(f"{prefix}_warning: must not be below {prefix}_critical")
    return {f"{prefix}_warning": warn, f"{prefix}_critical": crit}


def judge(value: float | None, config: dict, prefix: str, *,
          higher_is_worse: bool = True) -> str:
    """State of `value` against `<prefix>_warning/_critical` in config (absent: ok)."""
    if value is None:
        return OK
    crit, warn = config.get(f"{prefix}_critical"), config.get(f"{prefix}_warning")
    if higher_is_worse:
        if crit is not None and value >= crit:
            return CRITICAL
        if warn is not None and value >= warn:
            return WARNING
    else:
        if crit is not None and value <= crit:
            return CRITICAL
        if warn is not None and value <= warn:
            return WARNING
    return OK


def timeout(config: dict, default: float = 10.0) -> float:
    return number(config, "timeout", default, minimum=0.1, maximum=120)
