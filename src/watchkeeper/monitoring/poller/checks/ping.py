"""ICMP echo check (loss and latency) with one socket shared by every ping of a poller
(core/probes/icmp.py's Pinger); when the process may open no ICMP socket ("binary" mode)
each check runs the system `ping` program.

Config: host, count (3), interval (s between requests, 0.2), timeout (s per reply, 2),
family ("any", "ipv4", "ipv6"), loss_warning / loss_critical (%, default 100 critical),
latency_warning / latency_critical (ms, average round trip).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import socket

from watchkeeper.core import netguard
from watchkeeper.core.probes.icmp import Pinger

from .base import (
    CRITICAL,
    OK,
    ConfigError,
    Outcome,
    host,
    integer,
    judge,
    number,
    text,
    thresholds,
    timeout,
    worst,
)

log = logging.getLogger(__name__)
KIND = "ping"


def validate(config: dict) -> dict:
    clean = {
        "host": host(config),
        "count": integer(config, "count", 3, minimum=1, maximum=20),
        "interval": number(config, "interval", 0.2, minimum=0.01, maximum=10),
        "timeout": timeout(config, 2.0),
        "family": text(config, "family", "any", choices=("any", "ipv4", "ipv6")),
        **thresholds(config, "loss"),
        **thresholds(config, "latency"),
    }
    if clean["loss_critical"] is None:
        clean["loss_critical"] = 100.0
    for key in ("loss_warning", "loss_critical"):
        if clean[key] is not None and clean[key] > 100:
            raise ConfigError(f"{key}: a percentage, at most 100")
    return clean


def target(config: dict) -> str:
    return config["host"]


async def _resolve(name: str, family: str) -> tuple[int, str]:
    fam = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}[family]
    infos = await netguard.resolve(name, None, family=fam, kind=socket.SOCK_RAW)
    infos.sort(key=lambda i: i[0] != socket.AF_INET)  # prefer IPv4 when both exist
    return infos[0][0], infos[0][4][0]


_BINARY_LOSS = re.compile(r"([\d.]+)% packet loss")
_BINARY_RTT = re.compile(r"= [\d.]+/([\d.]+)/[\d.]+")


async def _binary(config: dict, family: int, address: str) -> tuple[list[float], int]:
    program = shutil.which("ping")
    if program is None:
        raise OSError("no ICMP socket and no ping program")
    args = [program, "-n", "-c", str(config["count"]), "-i", f"{max(config['interval'], 0.2):g}",
            "-W", f"{max(config['timeout'], 1):g}", "-6" if family == socket.AF_INET6 else "-4",
            address]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL)
    limit = config["count"] * (config["interval"] + config["timeout"]) + 5
    try:
        async with asyncio.timeout(limit):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return [], config["count"]
    output = out.decode("utf-8", "replace")
    loss = _BINARY_LOSS.search(output)
    rtt = _BINARY_RTT.search(output)
    lost = round(float(loss.group(1)) / 100 * config["count"]) if loss else config["count"]
    received = config["count"] - lost
    return ([float(rtt.group(1))] * received if rtt else []), lost


async def run(config: dict, ctx) -> Outcome:
    try:
        family, address = await _resolve(config["host"], config["family"])
    except OSError as exc:
        return Outcome(CRITICAL, f"{config['host']}: cannot resolve ({exc.strerror or exc})",
                       details={"error": "resolve"})
    pinger: Pinger = ctx.pinger()
    if pinger.mode == "binary":
        try:
            rtts, lost = await _binary(config, family, address)
        except OSError as exc:
            return Outcome("unknown", f"cannot ping: {exc}")
    else:
        async def one(i: int) -> float | None:
            await asyncio.sleep(i * config["interval"])
            return await pinger.echo(family, address, config["timeout"])

        replies = await asyncio.gather(*(one(i) for i in range(config["count"])))
        rtts = [r for r in replies if r is not None]
        lost = config["count"] - len(rtts)
    loss = lost / config["count"] * 100
    avg = sum(rtts) / len(rtts) if rtts else None
    details = {"address": address, "sent": config["count"], "received": len(rtts),
               "loss_pct": round(loss, 1), "mode": pinger.mode}
    if rtts:
        details.update(rtt_min_ms=round(min(rtts), 3), rtt_avg_ms=round(avg, 3),
                       rtt_max_ms=round(max(rtts), 3))
    state = worst(judge(loss, config, "loss"), judge(avg, config, "latency") if rtts else OK)
    if not rtts:
        message = f"{config['host']} ({address}): no reply to {config['count']} pings"
    else:
        message = (f"{config['host']} ({address}): {loss:.0f}% loss, "
                   f"avg {avg:.2f} ms over {len(rtts)} replies")
    return Outcome(state, message, value=avg, details=details)
