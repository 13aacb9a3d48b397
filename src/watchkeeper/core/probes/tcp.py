"""TCP connect probe: connect (optionally read the server's first bytes) and time it."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from watchkeeper.core import netguard


@dataclass(frozen=True)
class Connect:
    """What one connection attempt saw. `refused`: the host answered with a reset (it is up,
    the port is closed); `timed_out`: nothing answered in time; `error`: why it failed."""

    open: bool
    latency_ms: float | None = None
    banner: str | None = None
    refused: bool = False
    timed_out: bool = False
    error: str = ""


async def connect(host: str, port: int, timeout: float, *, banner_bytes: int = 0) -> Connect:
    """Connect to host:port within `timeout` seconds (the banner read included)."""
    started = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            # Through the SSRF guard: resolved, checked against the allowed networks, and
            # connected to the checked address (ProbeRefused is not an OSError on purpose).
            reader, writer = await netguard.open_connection(host, port)
            latency = (time.perf_counter() - started) * 1000
            banner = None
            if banner_bytes:
                banner = (await reader.read(banner_bytes)).decode("utf-8", "replace")
    except TimeoutError:
        return Connect(False, timed_out=True, error="timeout")
    except OSError as exc:
        reason = (os.strerror(exc.errno) if exc.errno else None) or exc.__class__.__name__
        return Connect(False, refused=isinstance(exc, ConnectionRefusedError), error=reason)
    finally:
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
    return Connect(True, latency_ms=latency, banner=banner)
