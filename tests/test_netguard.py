"""The SSRF guard (core/netguard.py): probes reach only the networks an admin allowed, checked
at connect time after DNS resolution — tried with names that resolve to loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest

from watchkeeper.core import netguard
from watchkeeper.core.choices import Role
from watchkeeper.monitoring import actions as mon_actions
from watchkeeper.monitoring.poller.checks import PollerContext, run_check, validate

from .factories import make_client, make_user
from .monitoring_targets import HttpTarget

LAN = ["10.20.0.0/16"]


def run(kind: str, config: dict, networks: list[str]):
    clean = validate(kind, config)

    async def go():
        with netguard.allow(networks):
            async with PollerContext() as ctx:
                return await run_check(kind, clean, ctx)

    return asyncio.run(go())


@pytest.fixture
def listener():
    """A loopback TCP listener that records whether anyone connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0)
    yield server
    server.close()


def accepted(server) -> bool:
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def test_address_rules():
    nets = netguard.parse_networks(["0.0.0.0/0", "::/0"])
    assert netguard.permitted("10.1.2.3", nets) and netguard.permitted("2001:db8::1", nets)
    # A catch-all does not open the server's own loopback, link-local (cloud metadata),
    # unspecified or multicast addresses
    for ip in ("127.0.0.1", "::1", "169.254.169.254", "fe80::1", "0.0.0.0", "224.0.0.1",
               "::ffff:127.0.0.1"):
        assert not netguard.permitted(ip, nets), ip
    # A network of their own kind does
    assert netguard.permitted("127.0.0.1", netguard.parse_networks(["127.0.0.0/8"]))
    assert netguard.permitted("169.254.169.254", netguard.parse_networks(["169.254.0.0/16"]))
    assert not netguard.permitted("10.9.0.1", netguard.parse_networks(LAN))
    assert not netguard.permitted("10.20.0.1", [])
    with pytest.raises(ValueError, match="not a network"):
        netguard.parse_networks(["10.0.0.0/33"])
    assert netguard.normalize_networks(["10.0.0.1/8", "10.0.0.0/8"]) == ["10.0.0.0/8"]


def test_tcp_to_a_name_resolving_to_loopback_is_refused_before_connecting(listener):
    port = listener.getsockname()[1]
    outcome = run("tcp", {"host": "localhost", "port": port}, LAN)
    assert outcome.state == "unknown" and "was not probed" in outcome.message
    assert "127.0.0.1" in outcome.message
    assert not accepted(listener)
    # With loopback allowed, the same check connects
    assert run("tcp", {"host": "localhost", "port": port}, ["127.0.0.0/8", "::1/128"]).state \
        == "ok"
    assert accepted(listener)


def test_http_check_by_name_is_refused_unless_allowed():
    with HttpTarget() as target:
        url = target.url("/ok", host="localhost")
        refused = run("http", {"url": url}, ["0.0.0.0/0"])
        assert refused.state == "unknown" and "was not probed" in refused.message
        assert run("http", {"url": url}, ["127.0.0.0/8", "::1/128"]).state == "ok"


def test_probes_outside_allow_are_refused():
    with pytest.raises(netguard.ProbeRefused, match="no networks are allowed"):
        asyncio.run(netguard.resolve("localhost", 80))


def test_a_technicians_test_now_cannot_probe_the_msp_network(client, db, as_user):
    lab = make_client("Lab client", probe_networks=LAN)
    tech = make_user("tech-ssrf@msp.test", Role.TECHNICIAN, mfa=False)
    tech.assigned_clients.add(lab)
    as_user(tech)
    with HttpTarget() as target:
        # A draft check with no device uses the MSP's list (empty): refused
        response = client.post("/api/v1/monitoring/network-checks/test/",
                               {"kind": "http", "config": {"url": target.url("/ok")}},
                               content_type="application/json")
        assert response.status_code == 200
        body = response.json()
        assert body["state"] == "unknown" and "was not probed" in body["message"]
        # A saved check of the lab client's policy: outside its 10.20/16 -> refused too
        policy = mon_actions.create_policy(actor=None, name="Net", client=lab)
        check = mon_actions.add_check(actor=None, policy=policy, name="Intranet",
                                      kind="http", config={"url": target.url("/ok")})
        body = client.post(f"/api/v1/monitoring/network-checks/{check.pk}/test/").json()
        assert body["state"] == "unknown" and "10.20.0.0/16" in body["message"]


def test_discovery_outside_the_allowed_networks_is_refused(client, db, as_user, admin_user):
    lab = make_client("Lab client 2", probe_networks=LAN)
    as_user(admin_user)
    response = client.post("/api/v1/discoveries/", {"client": lab.pk, "subnet": "127.0.0.0/30"},
                           content_type="application/json")
    assert response.status_code == 400
    assert "outside the networks" in response.json()["errors"]["subnet"][0]
