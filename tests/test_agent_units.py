"""Agent internals that need no server: the spool's drop order and byte budget, command
verification, and the Windows/macOS collectors degrading to "unknown" off their platform."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from watchkeeper_agent.collectors import UNKNOWN, for_platform
from watchkeeper_agent.commands import Rejected, verify
from watchkeeper_agent.protocol import section_hash
from watchkeeper_agent.spool import Spool
from watchkeeper_agent.transport import InsecureServer, Transport


def batch(kind: str, size: int = 400) -> dict:
    return {"kind": kind, "pad": "x" * size}


def test_spool_drops_oldest_metrics_before_inventory_and_results(tmp_path):
    # Given a spool with room for about five batches
    spool = Spool(tmp_path, max_bytes=5 * 430)
    spool.put(1, "inventory", batch("inventory"))
    spool.put(2, "metrics", batch("metrics"))
    spool.put(3, "results", batch("results"))
    spool.put(4, "metrics", batch("metrics"))
    spool.put(5, "metrics", batch("metrics"))
    # When two more metric batches arrive
    dropped = spool.put(6, "metrics", batch("metrics"))
    dropped.update({k: dropped.get(k, 0) + v for k, v in spool.put(7, "metrics",
                                                                    batch("metrics")).items()})
    # Then the oldest metrics went, inventory and results stayed, order is kept
    assert dropped == {"metrics": 2}
    assert [(e.seq, e.kind) for e in spool.entries()] == [
        (1, "inventory"), (3, "results"), (5, "metrics"), (6, "metrics"), (7, "metrics")]
    assert spool.total_bytes() <= 5 * 430


def test_spool_drops_inventory_only_when_no_metrics_are_left(tmp_path):
    spool = Spool(tmp_path, max_bytes=2 * 430)
    spool.put(1, "inventory", batch("inventory"))
    spool.put(2, "results", batch("results"))
    dropped = spool.put(3, "results", batch("results"))
    assert dropped == {"inventory": 1}
    assert [e.seq for e in spool.entries()] == [2, 3]


def test_section_hash_matches_the_servers():
    from watchkeeper.core.canonical import canonical_hash as server_hash

    value = [{"name": "café", "version": "1.0", "source": "dpkg"}, {"n": 1.5}]
    assert section_hash(value) == server_hash(value)


def envelope(key, **overrides) -> dict:
    payload = {"v": 1, "id": "c1", "agent": "a1", "nonce": "n" * 32,
               "expires_at": int(time.time()) + 60, "language": "bash", "body": "true",
               "args": []}
    payload.update(overrides)
    text = json.dumps(payload)
    return {"id": "c1", "payload": text,
            "signature": base64.b64encode(key.sign(text.encode())).decode()}


@pytest.mark.parametrize("mutate,reason", [
    (lambda e: e.update(signature=""), "unsigned"),
    (lambda e: e.update(payload=e["payload"].replace("true", "reboot")), "bad signature"),
    (lambda e: e.update(signature="!!notbase64"), "bad signature"),
])
def test_verify_refuses_unsigned_and_tampered(mutate, reason):
    key = Ed25519PrivateKey.generate()
    env = envelope(key)
    mutate(env)
    with pytest.raises(Rejected, match=reason):
        verify(env, signer=key.public_key(), agent_id="a1")


def test_verify_refuses_expired_and_misaddressed():
    key = Ed25519PrivateKey.generate()
    with pytest.raises(Rejected, match="expired"):
        verify(envelope(key, expires_at=int(time.time()) - 1), signer=key.public_key(),
               agent_id="a1")
    with pytest.raises(Rejected, match="another agent"):
        verify(envelope(key), signer=key.public_key(), agent_id="someone-else")
    assert verify(envelope(key), signer=key.public_key(), agent_id="a1")["body"] == "true"


@pytest.mark.parametrize("platform_name", ["win32", "darwin"])
def test_other_platforms_degrade_to_unknown_here(platform_name):
    # Given the Windows or macOS collector on this Linux machine (no PowerShell, no sw_vers)
    collector = for_platform(platform_name)
    # When it collects
    inventory = collector.inventory()
    metrics = collector.metrics()
    # Then unreadable facts are "unknown", unreadable sections are absent, metrics work
    system = inventory["system"]
    assert system["serial"] == UNKNOWN and system["manufacturer"] in (UNKNOWN, "Apple")
    assert "software" not in inventory and "users" not in inventory
    assert isinstance(inventory["interfaces"], list)
    assert metrics["cpu.percent"] >= 0 and "mem.percent" in metrics


def test_a_timed_out_script_is_killed_with_its_background_children(tmp_path):
    import psutil
    from watchkeeper_agent.commands import _run

    # Given a script that leaves a background child holding the output pipes
    pidfile = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pidfile}; echo started; sleep 300"
    # When it runs past its timeout
    code, out, _, status = _run(["bash", "-c", script], cwd=str(tmp_path), timeout=3)
    # Then it is reported as timed out with its output so far, and the child is gone too
    assert status == "timeout" and code is None and b"started" in out
    child = int(pidfile.read_text())
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"


def test_transport_refuses_plain_http_unless_insecure():
    # Given plain http:// and https:// server URLs
    # Then https is accepted, http only with insecure=True, anything else never
    assert Transport("https://rmm.example.net").context is not None
    with pytest.raises(InsecureServer):
        Transport("http://rmm.example.net")
    assert Transport("http://127.0.0.1:8000", insecure=True).server == "http://127.0.0.1:8000"
    with pytest.raises(ValueError):
        Transport("ftp://rmm.example.net", insecure=True)
