"""The probe library shared by inventory discovery and the monitoring poller (core/probes):
the ICMP packet and sweep, and what a TCP connect reports. SNMP runs against the real snmpd
in tests/test_inventory_discovery.py and tests/test_monitoring_poller_checks.py."""

from __future__ import annotations

import asyncio

import pytest

from tests.monitoring_targets import free_port
from watchkeeper.core.probes import icmp, tcp

# The probes go through the SSRF guard; these tests probe loopback peers.
pytestmark = pytest.mark.usefixtures("loopback_probes")


def test_an_echo_request_carries_a_valid_checksum():
    packet = icmp.echo_packet(icmp.ECHO_REQUEST_V4, 0x1234, 7, b"watchkeeper")
    # A packet with its checksum filled in sums to zero (RFC 1071), odd length included.
    assert icmp.checksum(packet) == 0
    assert icmp.checksum(icmp.echo_packet(icmp.ECHO_REQUEST_V4, 1, 2, b"odd")) == 0
    assert packet[:2] == bytes([8, 0]) and packet[4:8] == bytes([0x12, 0x34, 0, 7])


@pytest.mark.skipif(icmp.Pinger().mode == "binary", reason="no ICMP socket for this process")
def test_a_sweep_reports_the_ipv4_hosts_that_answered():
    # (Whether a TEST-NET address stays silent depends on the network the tests run in, so
    # the silent side is the IPv6 address, which a sweep does not ping.)
    alive = asyncio.run(icmp.sweep(["127.0.0.1", "::1"], timeout=1.0))
    assert alive == {"127.0.0.1"}


def test_a_tcp_connect_tells_open_refused_and_silent_apart():
    async def scenario():
        async def greet(reader, writer):
            writer.write(b"220 lab ready\r\n")
            await writer.drain()
            await asyncio.sleep(1)
            writer.close()

        async def mute(reader, writer):
            await asyncio.sleep(1)
            writer.close()

        talker = await asyncio.start_server(greet, "127.0.0.1", 0)
        silent = await asyncio.start_server(mute, "127.0.0.1", 0)
        talker_port = talker.sockets[0].getsockname()[1]
        silent_port = silent.sockets[0].getsockname()[1]
        async with talker, silent:
            opened = await tcp.connect("127.0.0.1", talker_port, 2, banner_bytes=64)
            refused = await tcp.connect("127.0.0.1", free_port(), 2)
            # Connected, but the greeting never comes: the timeout covers the read too.
            quiet = await tcp.connect("127.0.0.1", silent_port, 0.3, banner_bytes=64)
        return opened, refused, quiet

    opened, refused, quiet = asyncio.run(scenario())
    assert opened.open and opened.banner == "220 lab ready\r\n" and opened.latency_ms >= 0
    assert not refused.open and refused.refused and not refused.timed_out
    assert refused.error == "Connection refused"
    assert not quiet.open and quiet.timed_out and not quiet.refused


def test_an_unresolvable_name_is_a_failure_not_an_exception():
    seen = asyncio.run(tcp.connect("host.invalid", 80, 2))
    assert not seen.open and not seen.refused and seen.error
