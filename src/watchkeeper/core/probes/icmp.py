"""ICMP echo with one socket per address family, shared by every ping of an event loop.

How it pings, in order of preference (`Pinger.mode` says which one it got):
- "dgram": an unprivileged ICMP datagram socket (Linux, when the process's group is
  inside net.ipv4.ping_group_range). The kernel sets the echo identifier to the socket's
  port and hands back only our own replies.
- "raw": a raw ICMP socket (needs root or CAP_NET_RAW). It sees every ICMP packet of the
  host, so replies are matched by our identifier and sequence number.
- "binary": neither socket could be opened; the caller falls back (the poller runs the
  system `ping` program, discovery relies on TCP answers).

In both socket modes every echo request gets a fresh 16-bit sequence number; the reply
(matched on address, identifier and sequence) resolves the future of the request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import os
import random
import socket
import struct
import time

from watchkeeper.core import netguard

log = logging.getLogger(__name__)

ECHO_REQUEST_V4, ECHO_REPLY_V4 = 8, 0
ECHO_REQUEST_V6, ECHO_REPLY_V6 = 128, 129
SWEEP_PACE = (64, 0.01)  # a sweep sends this many requests, then pauses this long (s)


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
        netguard.check(address)  # the SSRF guard: only allowed networks are pinged
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




async def sweep(addresses: list[str], timeout: float = 1.0) -> set[str] | None:
    """The IPv4 addresses that answered an echo within `timeout` s of their request; None
    when this process may not send ICMP."""
    pinger = Pinger()
    if pinger.mode == "binary":
        return None
    v4 = [a for a in addresses if ipaddress.ip_address(a).version == 4
          and netguard.permitted(a)]
    burst, pause = SWEEP_PACE

    async def one(i: int, address: str) -> str | None:
        await asyncio.sleep((i // burst) * pause)  # pace the sweep a little
        rtt = await pinger.echo(socket.AF_INET, address, timeout)
        return address if rtt is not None else None

    try:
        answered = await asyncio.gather(*(one(i, a) for i, a in enumerate(v4)))
    finally:
        pinger.close()
    return {a for a in answered if a}
