"""DNS record check (dnspython's asyncio resolver).

Config: name, rtype (A, AAAA, CNAME, MX, NS, TXT, PTR, SOA, SRV, CAA), nameserver (an IP
address; default the system resolvers), port (53), expected (list of values), match:
"any" (one expected value is present, default), "all" (every expected value is present)
or "exact" (the answer set equals the expected set), timeout, latency_warning /
latency_critical (ms). Without `expected` the check only requires an answer.
Values are compared in dnspython's text form, case-insensitive, trailing dots ignored
(MX as "10 mail.example.com", TXT without quotes).
"""

from __future__ import annotations

import ipaddress
import time

import dns.asyncresolver
import dns.exception
import dns.resolver

from watchkeeper.core import netguard

from .base import (
    CRITICAL,
    OK,
    ConfigError,
    Outcome,
    integer,
    judge,
    text,
    thresholds,
    timeout,
    worst,
)

KIND = "dns"
RTYPES = ("A", "AAAA", "CNAME", "MX", "NS", "TXT", "PTR", "SOA", "SRV", "CAA")


def validate(config: dict) -> dict:
    nameserver = text(config, "nameserver", None, max_length=64)
    if nameserver:
        try:
            ipaddress.ip_address(nameserver)
        except ValueError:
            raise ConfigError("nameserver: must be an IP address") from None
    expected = config.get("expected") or []
    if isinstance(expected, str):
        expected = [e for e in (x.strip() for x in expected.split(",")) if e]
    if not isinstance(expected, list) or not all(isinstance(e, str) for e in expected):
        raise ConfigError("expected: a list of values")
    return {
        "name": text(config, "name", required=True, max_length=253),
        "nameserver": nameserver,
        "port": integer(config, "port", 53, minimum=1, maximum=65535),
        "expected": expected,
        "match": text(config, "match", "any", choices=("any", "all", "exact")),
        "timeout": timeout(config, 5.0),
        **thresholds(config, "latency"),
    } | _check_rtype(config)


def _check_rtype(config: dict) -> dict:
    rtype = (text(config, "rtype", "A", max_length=10) or "A").upper()
    if rtype not in RTYPES:
        raise ConfigError(f"rtype: one of {', '.join(RTYPES)}")
    return {"rtype": rtype}


def target(config: dict) -> str:
    return f"{config['rtype']} {config['name']}"


def normalise(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value.lower().rstrip(".")


async def run(config: dict, ctx=None) -> Outcome:
    resolver = dns.asyncresolver.Resolver(configure=not config.get("nameserver"))
    if config.get("nameserver"):
        netguard.check(config["nameserver"])  # a chosen server is a probe target too
        resolver.nameservers = [config["nameserver"]]
    resolver.port = config["port"]
    resolver.lifetime = config["timeout"]
    resolver.timeout = config["timeout"]
    started = time.perf_counter()
    try:
        answer = await resolver.resolve(config["name"], config["rtype"], search=False)
        values = sorted(rr.to_text() for rr in answer)
    except dns.resolver.NXDOMAIN:
        return Outcome(CRITICAL, f"{target(config)}: no such name", details={"error": "NXDOMAIN"})
    except dns.resolver.NoAnswer:
        values = []
    except dns.exception.Timeout:
        return Outcome(CRITICAL, f"{target(config)}: no answer within {config['timeout']:g} s",
                       details={"error": "timeout"})
    except dns.exception.DNSException as exc:
        return Outcome(CRITICAL, f"{target(config)}: {exc}"[:500],
                       details={"error": str(exc)[:500]})
    latency = (time.perf_counter() - started) * 1000
    details = {"values": values[:50], "latency_ms": round(latency, 3)}
    got = {normalise(v) for v in values}
    want = {normalise(v) for v in config["expected"]}
    state, problem = OK, None
    if not values:
        state, problem = CRITICAL, "no records"
    elif want:
        if config["match"] == "any" and not (got & want):
            state, problem = CRITICAL, "none of the expected values"
        elif config["match"] == "all" and not want <= got:
            state, problem = CRITICAL, "missing " + ", ".join(sorted(want - got))
        elif config["match"] == "exact" and got != want:
            state, problem = CRITICAL, "answer differs from expected"
    state = worst(state, judge(latency, config, "latency"))
    shown = ", ".join(values[:5]) + (" …" if len(values) > 5 else "")
    message = f"{target(config)} = {shown or '(none)'} in {latency:.1f} ms"
    if problem:
        message += f" — {problem}"
    return Outcome(state, message, value=latency, details=details)
