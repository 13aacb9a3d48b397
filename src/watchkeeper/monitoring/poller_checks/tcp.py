"""TCP port check: connect (optionally read a banner) and time it.

Config: host, port, timeout (s), expect "open" (default) or "closed", banner (a substring
the first bytes sent by the server must contain), latency_warning / latency_critical (ms).
"""

from __future__ import annotations

import asyncio
import os
import time

from watchkeeper.core import netguard

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
    started = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(config["timeout"]):
            reader, writer = await netguard.open_connection(config["host"], config["port"])
            latency = (time.perf_counter() - started) * 1000
            banner = None
            if config.get("banner"):
                banner = (await reader.read(BANNER_BYTES)).decode("utf-8", "replace")
    except TimeoutError:
        if config["expect"] == "closed":
            return Outcome(OK, f"{target(config)} did not answer (expected closed)")
        return Outcome(CRITICAL, f"{target(config)}: no answer within {config['timeout']:g} s",
                       details={"error": "timeout"})
    except OSError as exc:
        reason = (os.strerror(exc.errno) if exc.errno else None) or exc.__class__.__name__
        if config["expect"] == "closed":
            return Outcome(OK, f"{target(config)} is closed ({reason})")
        return Outcome(CRITICAL, f"{target(config)}: {reason}", details={"error": reason})
    finally:
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
    if config["expect"] == "closed":
        return Outcome(CRITICAL, f"{target(config)} is open, expected closed", value=latency)
    details = {"latency_ms": round(latency, 3)}
    if config.get("banner"):
        details["banner"] = banner[:200]
        if config["banner"] not in banner:
            return Outcome(CRITICAL, f"{target(config)}: banner does not contain "
                                     f"{config['banner']!r}", value=latency, details=details)
    state = judge(latency, config, "latency")
    return Outcome(state, f"{target(config)} open in {latency:.1f} ms", value=latency,
                   details=details)
