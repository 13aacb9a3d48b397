"""TCP port check: connect (optionally read a banner) and time it (core/probes/tcp.py).

Config: host, port, timeout (s), expect "open" (default) or "closed", banner (a substring
the first bytes sent by the server must contain), latency_warning / latency_critical (ms).
"""

from __future__ import annotations

from watchkeeper.core.probes import tcp

from .base import (
    CRITICAL,
    OK,
    ConfigError,
    Outcome,
    host,
    integer,
    judge,
    text,
    thresholds,
    timeout,
)

KIND = "tcp"
BANNER_BYTES = 1024


def validate(config: dict) -> dict:
    clean = {
        "host": host(config),
        "port": integer(config, "port", None, minimum=1, maximum=65535),
        "timeout": timeout(config, 5.0),
        "expect": text(config, "expect", "open", choices=("open", "closed")),
        "banner": text(config, "banner", None, max_length=200),
        **thresholds(config, "latency"),
    }
    if clean["port"] is None:
        raise ConfigError("port: required")
    return clean


def target(config: dict) -> str:
    return f"{config['host']}:{config['port']}"


async def run(config: dict, ctx=None) -> Outcome:
    seen = await tcp.connect(config["host"], config["port"], config["timeout"],
                             banner_bytes=BANNER_BYTES if config.get("banner") else 0)
    if not seen.open:
        if config["expect"] == "closed":
            if seen.timed_out:
                return Outcome(OK, f"{target(config)} did not answer (expected closed)")
            return Outcome(OK, f"{target(config)} is closed ({seen.error})")
        if seen.timed_out:
            return Outcome(CRITICAL, f"{target(config)}: no answer within "
                                     f"{config['timeout']:g} s", details={"error": "timeout"})
        return Outcome(CRITICAL, f"{target(config)}: {seen.error}",
                       details={"error": seen.error})
    latency = seen.latency_ms
    if config["expect"] == "closed":
        return Outcome(CRITICAL, f"{target(config)} is open, expected closed", value=latency)
    details = {"latency_ms": round(latency, 3)}
    if config.get("banner"):
        details["banner"] = seen.banner[:200]
        if config["banner"] not in seen.banner:
            return Outcome(CRITICAL, f"{target(config)}: banner does not contain "
                                     f"{config['banner']!r}", value=latency, details=details)
    state = judge(latency, config, "latency")
    return Outcome(state, f"{target(config)} open in {latency:.1f} ms", value=latency,
                   details=details)
