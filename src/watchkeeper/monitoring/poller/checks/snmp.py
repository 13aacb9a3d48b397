"""SNMP check, v2c and v3 (core/probes/snmp.py, one SnmpEngine per poller).

Config: host, port (161), version "2c" or "3", timeout (s), retries (1);
v2c: community; v3: user, auth_protocol (none, md5, sha, sha224, sha256, sha384, sha512),
auth_key, priv_protocol (none, des, 3des, aes, aes192, aes256), priv_key, context.
mode "oid": oid (numeric, dotted) and either expected (the value as text must equal it) or
value_warning / value_critical with direction "above" (default: high is bad) or "below".
mode "interface": if_index, or if_name (found by a walk of ifDescr); ifOperStatus up is ok,
down / lowerLayerDown critical, any other status (testing, unknown, dormant, notPresent)
warning.
"""

from __future__ import annotations

import re

from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

from watchkeeper.core.probes import snmp

from .base import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    ConfigError,
    Outcome,
    host,
    integer,
    judge,
    number,
    text,
    timeout,
)

KIND = "snmp"
SECRET_FIELDS = ("community", "auth_key", "priv_key")
OID = re.compile(r"^\.?\d+(\.\d+)+$")
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
OPER_STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant",
               6: "notPresent", 7: "lowerLayerDown"}


def validate(config: dict) -> dict:
    version = text(config, "version", "2c", choices=("2c", "3"))
    clean = {
        "host": host(config),
        "port": integer(config, "port", 161, minimum=1, maximum=65535),
        "version": version,
        "timeout": timeout(config, 2.0),
        "retries": integer(config, "retries", 1, minimum=0, maximum=5),
        "mode": text(config, "mode", "oid", choices=("oid", "interface")),
    }
    if version == "2c":
        clean["community"] = text(config, "community", required=True, max_length=200)
    else:
        clean.update(
            user=text(config, "user", required=True, max_length=200),
            auth_protocol=text(config, "auth_protocol", "sha", choices=tuple(snmp.AUTH)),
            auth_key=text(config, "auth_key", None, max_length=200),
            priv_protocol=text(config, "priv_protocol", "none", choices=tuple(snmp.PRIV)),
            priv_key=text(config, "priv_key", None, max_length=200),
            context=text(config, "context", "", max_length=200) or "",
        )
        if clean["auth_protocol"] != "none" and len(clean["auth_key"] or "") < 8:
            raise ConfigError("auth_key: at least 8 characters")
        if clean["priv_protocol"] != "none":
            if clean["auth_protocol"] == "none":
                raise ConfigError("priv_protocol: privacy needs authentication")
            if len(clean["priv_key"] or "") < 8:
                raise ConfigError("priv_key: at least 8 characters")
    if clean["mode"] == "interface":
        clean["if_index"] = integer(config, "if_index", None, minimum=1)
        clean["if_name"] = text(config, "if_name", None, max_length=200)
        if clean["if_index"] is None and not clean["if_name"]:
            raise ConfigError("if_index: required (or if_name, the interface's ifDescr)")
    else:
        oid = text(config, "oid", required=True, max_length=300)
        if not OID.match(oid):
            raise ConfigError("oid: a numeric OID such as 1.3.6.1.2.1.1.3.0")
        direction = text(config, "direction", "above", choices=("above", "below"))
        clean.update(oid=oid.lstrip("."), expected=text(config, "expected", None),
                     direction=direction,
                     value_warning=number(config, "value_warning", None),
                     value_critical=number(config, "value_critical", None))
        w, c = clean["value_warning"], clean["value_critical"]
        if w is not None and c is not None and (w > c if direction == "above" else w < c):
            raise ConfigError("value_warning: must come before value_critical")
    return clean


def target(config: dict) -> str:
    what = (f"ifOperStatus.{config.get('if_index') or config.get('if_name')}"
            if config["mode"] == "interface" else config["oid"])
    return f"{config['host']}:{config['port']} {what}"


async def find_interface(config: dict, engine: SnmpEngine, name: str) -> int | None:
    """The ifIndex whose ifDescr is `name` (a walk of ifDescr), or None."""
    async for oid, value in snmp.walk(config, engine, IF_DESCR):
        if value.prettyPrint() == name:
            return int(oid.rsplit(".", 1)[1])
    return None


def _as_number(value) -> float | None:
    try:
        return float(int(value))
    except (TypeError, ValueError):
        try:
            return float(value.prettyPrint())
        except (TypeError, ValueError, AttributeError):
            return None


async def run(config: dict, ctx) -> Outcome:
    engine = ctx.snmp_engine()
    try:
        if config["mode"] == "interface":
            idx = config.get("if_index")
            if idx is None:
                idx = await find_interface(config, engine, config["if_name"])
                if idx is None:
                    return Outcome(CRITICAL, f"no interface named {config['if_name']!r}",
                                   details={"if_name": config["if_name"]})
            status_value, descr = await snmp.get(config, engine, [f"{IF_OPER_STATUS}.{idx}",
                                                             f"{IF_DESCR}.{idx}"])
            code = int(status_value)
            name = descr.prettyPrint() if hasattr(descr, "prettyPrint") else str(descr)
            label = OPER_STATUS.get(code, str(code))
            state = OK if code == 1 else CRITICAL if code in (2, 7) else WARNING
            return Outcome(state, f"interface {idx} ({name}) is {label}", value=float(code),
                           details={"if_index": idx, "if_descr": name[:200],
                                    "oper_status": label})
        (value,) = await snmp.get(config, engine, [config["oid"]])
    except snmp.SnmpFailure as exc:
        return Outcome(CRITICAL, f"{target(config)}: {exc}"[:500], details={"error": str(exc)})
    except Exception as exc:  # pysnmp raises its own errors for unusable targets
        return Outcome(UNKNOWN, f"{target(config)}: {exc.__class__.__name__}: {exc}"[:500],
                       details={"error": str(exc)[:500]})
    shown = value.prettyPrint()
    details = {"oid": config["oid"], "raw": shown[:500]}
    if config.get("expected") is not None:
        state = OK if shown == config["expected"] else CRITICAL
        message = f"{config['oid']} = {shown[:200]}"
        if state != OK:
            message += f" (expected {config['expected'][:100]})"
        return Outcome(state, message, value=_as_number(value), details=details)
    number_value = _as_number(value)
    if number_value is None and (config.get("value_warning") is not None
                                 or config.get("value_critical") is not None):
        return Outcome(UNKNOWN, f"{config['oid']} = {shown[:200]} is not a number",
                       details=details)
    state = judge(number_value, config, "value",
                  higher_is_worse=config.get("direction", "above") == "above")
    return Outcome(state, f"{config['oid']} = {shown[:200]}", value=number_value,
                   details=details)
