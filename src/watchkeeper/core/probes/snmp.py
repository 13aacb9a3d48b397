"""SNMP v2c and v3 GET and walk (pysnmp's asyncio API). A target is a dict: host, port,
timeout (s), retries, version "2c" (community) or "3" (user, auth_protocol, auth_key,
priv_protocol, priv_key, context) — the poller's check config, or what discovery builds.
The caller owns the SnmpEngine (one per poller; discovery opens one per sweep).
"""

from __future__ import annotations

import socket

from pyasn1.type.univ import Null
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    get_cmd,
    walk_cmd,
)
from pysnmp.hlapi.v3arch.asyncio import auth as snmp_auth
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from watchkeeper.core import netguard

AUTH = {"none": snmp_auth.USM_AUTH_NONE, "md5": snmp_auth.USM_AUTH_HMAC96_MD5,
        "sha": snmp_auth.USM_AUTH_HMAC96_SHA, "sha224": snmp_auth.USM_AUTH_HMAC128_SHA224,
        "sha256": snmp_auth.USM_AUTH_HMAC192_SHA256,
        "sha384": snmp_auth.USM_AUTH_HMAC256_SHA384,
        "sha512": snmp_auth.USM_AUTH_HMAC384_SHA512}
PRIV = {"none": snmp_auth.USM_PRIV_NONE, "des": snmp_auth.USM_PRIV_CBC56_DES,
        "3des": snmp_auth.USM_PRIV_CBC168_3DES, "aes": snmp_auth.USM_PRIV_CFB128_AES,
        "aes192": snmp_auth.USM_PRIV_CFB192_AES, "aes256": snmp_auth.USM_PRIV_CFB256_AES}


class SnmpFailure(Exception):
    """The agent answered with an error, or did not answer."""


def _auth(config: dict):
    if config["version"] == "2c":
        return CommunityData(config["community"], mpModel=1)  # noqa: S508 - v2c on request
    auth = AUTH[config["auth_protocol"]]
    priv = PRIV[config["priv_protocol"]]
    return UsmUserData(config["user"],
                       authKey=config.get("auth_key") if auth != AUTH["none"] else None,
                       privKey=config.get("priv_key") if priv != PRIV["none"] else None,
                       authProtocol=auth, privProtocol=priv)


async def _target(config: dict) -> tuple[UdpTransportTarget, ContextData]:
    # The SSRF guard: the name is resolved and checked here, and the agent is asked at the
    # checked address, not the name.
    infos = await netguard.resolve(config["host"], config["port"], kind=socket.SOCK_DGRAM)
    transport = await UdpTransportTarget.create((infos[0][4][0], config["port"]),
                                                timeout=config["timeout"],
                                                retries=config.get("retries", 0))
    return transport, ContextData(contextName=config.get("context", "") or "")


async def get(config: dict, engine: SnmpEngine, oids: list[str], *,
              missing_ok: bool = False) -> list:
    """GET `oids`; the values (pyasn1 objects), or raises SnmpFailure. An object the agent
    does not have is a failure too, unless `missing_ok` (then its value is None)."""
    transport, context = await _target(config)
    error, status, index, binds = await get_cmd(
        engine, _auth(config), transport, context,
        *(ObjectType(ObjectIdentity(oid)) for oid in oids), lookupMib=False)
    if error:
        raise SnmpFailure(str(error))
    if status:
        raise SnmpFailure(f"{status.prettyPrint()} at {oids[int(index) - 1] if index else '?'}")
    values = []
    for oid, (_name, value) in zip(oids, binds, strict=True):
        if isinstance(value, NoSuchObject | NoSuchInstance | EndOfMibView | Null):
            if not missing_ok:
                raise SnmpFailure(f"no such object {oid}")
            value = None
        values.append(value)
    return values


async def walk(config: dict, engine: SnmpEngine, oid: str):
    """(OID, value) of every object under `oid`, in order; raises SnmpFailure."""
    transport, context = await _target(config)
    async for error, status, _index, binds in walk_cmd(
            engine, _auth(config), transport, context, ObjectType(ObjectIdentity(oid)),
            lookupMib=False, lexicographicMode=False):
        if error:
            raise SnmpFailure(str(error))
        if status:
            raise SnmpFailure(status.prettyPrint())
        for name, value in binds:
            yield str(name), value


