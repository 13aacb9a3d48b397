"""Server-side checks run by the poller: one module per kind, each with
`validate(config) -> config`, `target(config) -> str` and `async run(config, ctx) -> Outcome`.
"""

from __future__ import annotations

from . import dns, http, ping, snmp, tcp, tls
from .base import CRITICAL, OK, UNKNOWN, WARNING, ConfigError, Outcome, worst
from .context import PollerContext

KINDS = {m.KIND: m for m in (ping, tcp, http, tls, dns, snmp)}
LABELS = {"ping": "ICMP ping", "tcp": "TCP port", "http": "HTTP(S)", "tls": "TLS certificate",
          "dns": "DNS record", "snmp": "SNMP"}
SECRET_FIELDS = {"snmp": snmp.SECRET_FIELDS}

__all__ = ["CRITICAL", "KINDS", "LABELS", "OK", "SECRET_FIELDS", "UNKNOWN", "WARNING",
           "ConfigError", "Outcome", "PollerContext", "run_check", "validate", "worst"]


def validate(kind: str, config: dict) -> dict:
    """The cleaned config of a check of `kind`, or ConfigError naming the field."""
    if kind not in KINDS:
        raise ConfigError(f"kind: one of {', '.join(KINDS)}")
    if not isinstance(config, dict):
        raise ConfigError("config: must be an object")
    return KINDS[kind].validate(config)


async def run_check(kind: str, config: dict, ctx: PollerContext) -> Outcome:
    """Run one check of `kind` with an already validated config; never raises for a
    target's fault (that is a critical outcome), only unknown for our own."""
    try:
        return await KINDS[kind].run(config, ctx)
    except Exception as exc:  # a bug or resource problem in the poller, not the target
        return Outcome(UNKNOWN, f"check failed: {exc.__class__.__name__}: {exc}"[:500],
                       details={"error": exc.__class__.__name__})
