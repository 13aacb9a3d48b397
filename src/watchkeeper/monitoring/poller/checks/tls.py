"""TLS certificate check: days to expiry, host name match, chain verification.

Config: host, port (443), server_name (SNI and the name matched; default host), ca_file
(a PEM bundle to verify against instead of the system trust store), verify_chain (default
true), check_hostname (default true), days_warning (default 21), days_critical (default 7),
timeout (s). The value is the number of days left (fractional).

The certificate is read with verification off (so an expired or untrusted certificate still
reports its dates), then the chain is verified in a second handshake against the trust
store (or the check's `ca_file`, else the poller's WATCHKEEPER_POLLER_CA_FILE); host names
are matched against the subjectAltName entries (RFC 6125: a wildcard
only as the whole left-most label; the common name only when there is no SAN).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from watchkeeper.core import netguard

from .base import (
    CRITICAL,
    OK,
    WARNING,
    ConfigError,
    Outcome,
    boolean,
    host,
    integer,
    number,
    text,
    timeout,
    worst,
)

KIND = "tls"


def validate(config: dict) -> dict:
    clean = {
        "host": host(config),
        "port": integer(config, "port", 443, minimum=1, maximum=65535),
        "server_name": text(config, "server_name", None, max_length=253),
        "ca_file": text(config, "ca_file", None, max_length=1000),
        "verify_chain": boolean(config, "verify_chain", True),
        "check_hostname": boolean(config, "check_hostname", True),
        "days_warning": number(config, "days_warning", 21, minimum=0),
        "days_critical": number(config, "days_critical", 7, minimum=0),
        "timeout": timeout(config, 10.0),
    }
    if clean["days_warning"] < clean["days_critical"]:
        raise ConfigError("days_warning: must not be below days_critical")
    if clean["ca_file"] and not os.path.isfile(clean["ca_file"]):
        raise ConfigError("ca_file: no such file")
    return clean


def target(config: dict) -> str:
    return f"{config.get('server_name') or config['host']}:{config['port']}"


async def _handshake(config: dict, context: ssl.SSLContext) -> bytes:
    name = config.get("server_name") or config["host"]
    try:
        ipaddress.ip_address(name)
        sni = None
    except ValueError:
        sni = name
    async with asyncio.timeout(config["timeout"]):
        _reader, writer = await netguard.open_connection(
            config["host"], config["port"], ssl=context, server_hostname=sni)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.getpeercert(binary_form=True)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass


def _names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        return (san.get_values_for_type(x509.DNSName),
                [str(ip) for ip in san.get_values_for_type(x509.IPAddress)])
    except x509.ExtensionNotFound:
        cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        return [str(c) for c in cns], []


def hostname_matches(name: str, dns_names: list[str], ip_names: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(name)
        return any(ipaddress.ip_address(i) == ip for i in ip_names)
    except ValueError:
        pass
    name = name.lower().rstrip(".")
    for pattern in dns_names:
        pattern = pattern.lower().rstrip(".")
        if pattern == name:
            return True
        if pattern.startswith("*.") and "*" not in pattern[2:]:
            head, _, rest = name.partition(".")
            if head and rest == pattern[2:] and rest.count(".") >= 1:
                return True
    return False


async def run(config: dict, ctx=None) -> Outcome:
    relaxed = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    relaxed.check_hostname = False
    relaxed.verify_mode = ssl.CERT_NONE
    try:
        der = await _handshake(config, relaxed)
    except TimeoutError:
        return Outcome(CRITICAL, f"{target(config)}: no TLS handshake within "
                                 f"{config['timeout']:g} s", details={"error": "timeout"})
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        return Outcome(CRITICAL, f"{target(config)}: {reason}"[:500],
                       details={"error": str(reason)[:500]})
    if not der:
        return Outcome(CRITICAL, f"{target(config)}: no certificate presented")
    cert = x509.load_der_x509_certificate(der)
    not_after = cert.not_valid_after_utc
    days = (not_after - datetime.now(UTC)).total_seconds() / 86400
    dns_names, ip_names = _names(cert)
    details = {
        "subject": cert.subject.rfc4514_string()[:300],
        "issuer": cert.issuer.rfc4514_string()[:300],
        "not_after": not_after.isoformat(),
        "serial": format(cert.serial_number, "x"),
        "names": (dns_names + ip_names)[:50],
        "days_left": round(days, 3),
    }
    problems, states = [], []
    if days <= 0:
        states.append(CRITICAL)
        problems.append(f"expired on {not_after:%Y-%m-%d}")
    elif days <= config["days_critical"]:
        states.append(CRITICAL)
        problems.append(f"expires in {days:.1f} days")
    elif days <= config["days_warning"]:
        states.append(WARNING)
        problems.append(f"expires in {days:.1f} days")
    name = config.get("server_name") or config["host"]
    if config["check_hostname"] and not hostname_matches(name, dns_names, ip_names):
        states.append(CRITICAL)
        problems.append(f"certificate does not name {name}")
        details["hostname_match"] = False
    else:
        details["hostname_match"] = True
    if config["verify_chain"]:
        cafile = config.get("ca_file") or getattr(ctx, "ca_file", None) or None
        strict = ssl.create_default_context(cafile=cafile)
        strict.check_hostname = False  # matched above, with a clearer message
        try:
            await _handshake(config, strict)
            details["chain_valid"] = True
        except ssl.SSLCertVerificationError as exc:
            details["chain_valid"] = False
            states.append(CRITICAL)
            problems.append(f"chain not trusted: {exc.verify_message or exc.reason}")
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            details["chain_valid"] = None
            states.append(CRITICAL)
            problems.append(f"verification handshake failed: {exc}"[:300])
    state = worst(OK, *states)
    message = f"certificate for {name} valid until {not_after:%Y-%m-%d} ({days:.1f} days)"
    if problems:
        message = f"{name}: " + "; ".join(problems)
    return Outcome(state, message, value=days, details=details)
