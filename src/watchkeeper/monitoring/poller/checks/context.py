"""Resources shared by every check of one poller process (one event loop)."""

from __future__ import annotations

import ssl

import httpx

from watchkeeper.core import netguard
from watchkeeper.core.probes.icmp import Pinger


class PollerContext:
    """Lazily opened, shared: the ICMP pinger, HTTP clients (by TLS verification), the
    SNMP engine. Use as `async with PollerContext() as ctx:` inside the loop."""

    def __init__(self, *, concurrency: int = 200, ping_mode: str | None = None,
                 ca_file: str | None = None):
        self.concurrency = concurrency
        self.ping_mode = ping_mode
        self.ca_file = ca_file
        self._pinger: Pinger | None = None
        self._http: dict[bool, httpx.AsyncClient] = {}
        self._snmp = None

    def pinger(self) -> Pinger:
        if self._pinger is None:
            self._pinger = Pinger(self.ping_mode)
        return self._pinger

    def http_client(self, verify: bool) -> httpx.AsyncClient:
        client = self._http.get(verify)
        if client is None:
            if verify:
                tls = ssl.create_default_context(cafile=self.ca_file or None)
            else:
                tls = False
            # No keep-alive: every check measures a whole connection (connect, TLS
            # handshake, request), as its target's users see it; and httpcore's pool scans
            # every pooled connection per request, which costs 4x the CPU when idle
            # connections pile up across thousands of targets.
            limits = httpx.Limits(max_connections=self.concurrency,
                                  max_keepalive_connections=0)
            # Every connection through netguard (allowed networks, after resolution).
            transport = netguard.guarded_http_transport(verify=tls, limits=limits)
            client = httpx.AsyncClient(transport=transport, follow_redirects=False,
                                       headers={"User-Agent": "Watchkeeper-poller/1"},
                                       trust_env=False)
            self._http[verify] = client
        return client

    def snmp_engine(self):
        if self._snmp is None:
            from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

            self._snmp = SnmpEngine()
        return self._snmp

    async def aclose(self) -> None:
        for client in self._http.values():
            await client.aclose()
        self._http.clear()
        if self._pinger is not None:
            self._pinger.close()
            self._pinger = None
        if self._snmp is not None:
            try:
                self._snmp.close_dispatcher()
            except Exception:  # noqa: S110 - best effort at shutdown
                pass
            self._snmp = None

    async def __aenter__(self) -> PollerContext:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
