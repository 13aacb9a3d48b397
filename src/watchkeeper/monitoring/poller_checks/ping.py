"""ICMP echo check (loss and latency) with one socket shared by every ping of a poller.

How a poller pings, in order of preference (`Pinger.mode` says which one it got):
- "dgram": an unprivileged ICMP datagram socket (Linux, when the process's group is
  inside net.ipv4.ping_group_range). The kernel sets the echo identifier to the socket's
  port and hands back only our own replies.
- "raw": a raw ICMP socket (needs root or CAP_NET_RAW). It sees every ICMP packet of the
  host, so replies are matched by our identifier and sequence number.
- "binary": neither socket could be opened; each check runs the system `ping` program.

In both socket modes every echo request gets a fresh 16-bit sequence number; the reply
(matched on address, identifier and sequence) resolves the future of the request.

Config: host, count (3), interval (s between requests, 0.2), timeout (s per reply, 2),
family ("any", "ipv4", "ipv6"), loss_warning / loss_critical (%, default 100 critical),
latency_warning / latency_critical (ms, average round trip).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import re
import shutil
import socket
import struct
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
    number,
    text,
    thresholds,
    timeout,
    worst,
)

log = logging.getLogger(__name__)
KIND = "ping"

ECHO_REQUEST_V4, ECHO_REPLY_V4 = 8, 0
ECHO_REQUEST_V6, ECHO_REPLY_V6 = 128, 129


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


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_packet(kind: int, ident: int, seq: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    return struct.pack("!BBHHH", kind, 0, checksum(header + payload), ident, seq) + payload


class Pinger:
    """One ICMP socket per address family, shared by all pings of one event loop."""

    def __init__(self, mode: str | None = None):
        self._socks: dict[int, socket.socket] = {}
        self._pending: dict[tuple, asyncio.Future] = {}
        self._seq = itertools.count(random.randrange(0x10000))
        self._ident = (os.getpid() ^ random.randrange(0x10000)) & 0xFFFF
        self.mode = mode or self._probe()

    @staticmethod
    def _probe() -> str:
        for kind, name in ((socket.SOCK_DGRAM, "dgram"), (socket.SOCK_RAW, "raw")):
            try:
                socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP).close()
                return name
            except OSError:
                continue
        return "binary"

    def _socket(self, family: int) -> tuple[socket.socket, int]:
        sock = self._socks.get(family)
        if sock is None:
            proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
            kind = socket.SOCK_DGRAM if self.mode == "dgram" else socket.SOCK_RAW
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            if self.mode == "dgram":
                sock.bind(("0.0.0.0", 0) if family == socket.AF_INET else ("::", 0))  # noqa: S104
            asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, sock, family)
            self._socks[family] = sock
        ident = sock.getsockname()[1] if self.mode == "dgram" else self._ident
        return sock, ident

    def _readable(self, sock: socket.socket, family: int) -> None:
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                log.debug("icmp receive failed", exc_info=True)
                return
            if family == socket.AF_INET and self.mode == "raw":
                data = data[(data[0] & 0x0F) * 4:] if data else data
            if len(data) < 8:
                continue
            kind, _code, _sum, ident, seq = struct.unpack("!BBHHH", data[:8])
            if kind not in (ECHO_REPLY_V4, ECHO_REPLY_V6):
                continue
            if self.mode == "dgram":
                ident = sock.getsockname()[1]  # the kernel already filtered on our port
            future = self._pending.pop((family, addr[0], ident, seq), None)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())

    async def echo(self, family: int, address: str, timeout_s: float) -> float | None:
        """One echo request; the round trip in ms, or None when no reply came in time."""
        sock, ident = self._socket(family)
        seq = next(self._seq) & 0xFFFF
        kind = ECHO_REQUEST_V4 if family == socket.AF_INET else ECHO_REQUEST_V6
        packet = echo_packet(kind, ident, seq, b"watchkeeper-ping" + os.urandom(16))
        key = (family, address, ident, seq)
        future = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        sent = time.perf_counter()
        try:
            await asyncio.get_running_loop().sock_sendto(sock, packet, (address, 0))
            async with asyncio.timeout(timeout_s):
                received = await future
            return (received - sent) * 1000
        except (TimeoutError, OSError):
            return None
        finally:
            self._pending.pop(key, None)

    def close(self) -> None:
        for sock in self._socks.values():
            try:
                asyncio.get_running_loop().remove_reader(sock.fileno())
            except RuntimeError:
                pass
            sock.close()
        self._socks.clear()
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()


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
