"""Server-side request forgery guard: the server probes only networks an admin allowed.

Network checks (HTTP, TCP, TLS, SNMP, ping, DNS server) and discovery connect from the
server's own network, so an unrestricted "test this check" is a way into the MSP's LAN.
Every connection a probe makes goes through here, **at connect time, after DNS
resolution**: the name is resolved once, each address is checked against the allowed
networks, and the connection goes to the checked address (so a name that resolves to an
allowed address for the check and to 127.0.0.1 for the connection — DNS rebinding — cannot
slip through). TLS still verifies and sends SNI for the name.

Which networks: the check's client's `Client.probe_networks` (CIDR list, Clients → edit); a
check or test with no client uses `SecurityPolicy.probe_networks` (the MSP's own networks,
Admin → Roles). Empty means nothing may be probed. Loopback, link-local, unspecified and
multicast addresses are refused unless an allowed network *of that kind* contains them
(`127.0.0.0/8`, `169.254.0.0/16`, `::1/128`, `fe80::/10`): `0.0.0.0/0` does not open the
server's own loopback or the cloud metadata address.

The allowed networks travel in a context variable set around each probe (`allow(...)`), so
shared clients (the poller's HTTP pool) enforce the caller's list: a probe started outside
`allow()` is refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ProbeRefused(Exception):
    """The target is outside the allowed networks. Not an OSError on purpose: a check
    reports it as "unknown: refused", never as the target being down."""


_allowed: ContextVar[tuple[IPNetwork, ...] | None] = ContextVar("wk_probe_networks",
                                                                default=None)


def parse_networks(values: Iterable[str]) -> list[IPNetwork]:
    """CIDR strings (or single addresses) as networks; ValueError naming a bad one."""
    out = []
    for value in values or ():
        text = str(value).strip()
        if not text:
            continue
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a network (CIDR such as 10.1.0.0/16) or an "
                             "address") from exc
    return out


def normalize_networks(values: Iterable[str]) -> list[str]:
    """What is stored: canonical CIDR strings, without duplicates, in the given order."""
    seen: list[str] = []
    for net in parse_networks(values):
        if str(net) not in seen:
            seen.append(str(net))
    return seen


@contextmanager
def allow(networks: Iterable[str] | Iterable[IPNetwork]) -> Iterator[None]:
    """Probes started inside this block may reach `networks` (and nothing else)."""
    parsed = tuple(n if isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network)
                   else ipaddress.ip_network(str(n), strict=False) for n in networks)
    token = _allowed.set(parsed)
    try:
        yield
    finally:
        _allowed.reset(token)


def networks_for(client_id: int | None) -> list[str]:
    """The allowed networks of a client's probes (the MSP-wide list when no client)."""
    from .models import Client, SecurityPolicy

    if client_id is None:
        return list(SecurityPolicy.current().probe_networks or [])
    row = Client.objects.filter(pk=client_id).values_list("probe_networks", flat=True).first()
    return list(row or [])


# A special address is reachable only through an allowed network inside its own range.
_SPECIAL_RANGES = {
    "loopback": [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")],
    "link-local": [ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10")],
    "unspecified": [ipaddress.ip_network("0.0.0.0/32"), ipaddress.ip_network("::/128")],
    "multicast": [ipaddress.ip_network("224.0.0.0/4"), ipaddress.ip_network("ff00::/8")],
}


def _special(addr: IPAddress) -> str | None:
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_multicast:
        return "multicast"
    return None


def _address(ip: str | IPAddress) -> IPAddress:
    addr = ipaddress.ip_address(str(ip).split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return addr


def permitted(ip: str | IPAddress, networks: Iterable[IPNetwork] | None = None) -> bool:
    nets = _allowed.get() if networks is None else tuple(networks)
    if not nets:
        return False
    addr = _address(ip)
    kind = _special(addr)
    for net in nets:
        if addr.version != net.version or addr not in net:
            continue
        if kind is None or any(net.version == r.version and net.subnet_of(r)
                               for r in _SPECIAL_RANGES[kind]):
            return True
    return False


def check(ip: str | IPAddress, *, host: str | None = None) -> None:
    """Raise ProbeRefused unless `ip` is in the allowed networks of the current probe."""
    if not permitted(ip):
        raise ProbeRefused(_refusal(host or str(ip), [str(ip)]))


def _refusal(host: str, addresses: list[str]) -> str:
    nets = _allowed.get()
    where = ", ".join(addresses)
    target = host if host == where else f"{host} ({where})"
    if not nets:
        return (f"{target} was not probed: no networks are allowed for this client's probes "
                "(add them under the client's probe networks).")
    return (f"{target} was not probed: outside the networks allowed for this client's "
            f"probes ({', '.join(str(n) for n in nets)}); loopback and link-local need an "
            "allowed network of their own kind.")


def _literal(host: str, port: int | None, family: int, kind: int) -> list[tuple] | None:
    """getaddrinfo's answer for an address literal, without the resolver thread."""
    try:
        addr = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    fam = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    if family not in (socket.AF_UNSPEC, fam):
        return []
    sockaddr = (str(addr), port or 0) if fam == socket.AF_INET else (str(addr), port or 0, 0, 0)
    return [(fam, kind, 0, "", sockaddr)]


async def resolve(host: str, port: int | None = None, *, family: int = socket.AF_UNSPEC,
                  kind: int = socket.SOCK_STREAM) -> list[tuple]:
    """getaddrinfo, keeping only permitted addresses; ProbeRefused when none is."""
    if _allowed.get() is None:
        raise ProbeRefused(_refusal(host, [host]))
    infos = _literal(host, port, family, kind)
    if infos is None:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family,
                                                             type=kind)
    good = [info for info in infos if permitted(info[4][0])]
    if not good:
        raise ProbeRefused(_refusal(host, sorted({info[4][0] for info in infos})))
    return good


def resolve_sync(host: str, port: int | None = None, *, family: int = socket.AF_UNSPEC,
                 kind: int = socket.SOCK_STREAM) -> list[tuple]:
    """The blocking form of `resolve` (discovery's worker threads)."""
    if _allowed.get() is None:
        raise ProbeRefused(_refusal(host, [host]))
    infos = _literal(host, port, family, kind)
    if infos is None:
        infos = socket.getaddrinfo(host, port, family=family, type=kind)
    good = [info for info in infos if permitted(info[4][0])]
    if not good:
        raise ProbeRefused(_refusal(host, sorted({info[4][0] for info in infos})))
    return good


async def open_connection(host: str, port: int, **kwargs):
    """asyncio.open_connection to the first permitted address of `host` that answers. With
    `ssl=`, SNI and certificate checks use `host` (or the given `server_hostname`)."""
    infos = await resolve(host, port)
    if kwargs.get("ssl"):
        kwargs.setdefault("server_hostname", host)
    last: OSError | None = None
    for family, _kind, _proto, _name, sockaddr in infos:
        try:
            return await asyncio.open_connection(sockaddr[0], sockaddr[1], family=family,
                                                 **kwargs)
        except OSError as exc:
            last = exc
    assert last is not None
    raise last


def guarded_http_transport(**kwargs):
    """An httpx transport whose every TCP connection goes through `resolve()` (httpcore's
    network backend is the one place connections are opened; TLS/SNI use the URL's name)."""
    import httpcore
    import httpx

    class GuardedBackend(httpcore.AsyncNetworkBackend):
        def __init__(self) -> None:
            self._inner = httpcore.AnyIOBackend()

        async def connect_tcp(self, host, port, timeout=None, local_address=None,
                              socket_options=None):
            infos = await resolve(host, port)
            return await self._inner.connect_tcp(infos[0][4][0], port, timeout=timeout,
                                                 local_address=local_address,
                                                 socket_options=socket_options)

        async def connect_unix_socket(self, *args, **kw):  # never a probe's
            raise ProbeRefused("unix sockets are not probed")

        async def sleep(self, seconds: float) -> None:
            await self._inner.sleep(seconds)

    transport = httpx.AsyncHTTPTransport(**kwargs)
    # httpx builds its httpcore pool without a way to pass the backend: set it once here.
    transport._pool._network_backend = GuardedBackend()
    return transport
