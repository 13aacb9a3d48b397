"""Server-side checks against real loopback targets: HTTP(S), TLS, TCP, ICMP, DNS, SNMP.

The checks are pure coroutines (no database); each test starts a real peer, runs the
check through `run_check` with a real PollerContext and looks at the outcome.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile

import pytest

from tests.monitoring_targets import (
    SNMP_AUTH_KEY,
    SNMP_COMMUNITY,
    SNMP_PRIV_KEY,
    SNMP_USER,
    SNMPD,
    CertificateAuthority,
    DnsTarget,
    HttpTarget,
    SnmpTarget,
    free_port,
)
from watchkeeper.core.probes.icmp import Pinger
from watchkeeper.monitoring.poller.checks import (
    ConfigError,
    PollerContext,
    run_check,
    validate,
)
from watchkeeper.monitoring.poller.checks.tls import hostname_matches

pytestmark = pytest.mark.usefixtures("loopback_probes")

def check(kind: str, config: dict, **ctx_options):
    """Validate and run one check in a fresh event loop with its own context."""
    clean = validate(kind, config)

    async def go():
        async with PollerContext(**ctx_options) as ctx:
            return await run_check(kind, clean, ctx)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def http_target():
    with HttpTarget() as target:
        yield target


@pytest.fixture(scope="module")
def ca():
    directory = tempfile.mkdtemp(prefix="wk-ca-")
    yield CertificateAuthority(directory)
    shutil.rmtree(directory, ignore_errors=True)


# --- TCP ---------------------------------------------------------------------------------

def test_open_port_is_ok_with_latency(http_target):
    # Given a listening HTTP server; when the TCP check connects
    outcome = check("tcp", {"host": "127.0.0.1", "port": http_target.port})
    # Then the port is open and the connect time is reported
    assert outcome.state == "ok"
    assert outcome.value is not None and outcome.value >= 0
    assert "open" in outcome.message


def test_closed_port_is_critical_and_expected_closed_is_ok():
    # Given a port nobody listens on
    port = free_port()
    # When checked as a port that should be open, then critical (connection refused)
    outcome = check("tcp", {"host": "127.0.0.1", "port": port, "timeout": 2})
    assert outcome.state == "critical"
    assert "refused" in outcome.message.lower()
    # When checked as a port that should be closed, then ok
    assert check("tcp", {"host": "127.0.0.1", "port": port, "expect": "closed"}).state == "ok"


def test_tcp_banner_mismatch_is_critical():
    # Given a server that greets with an SMTP-like banner
    async def go():
        async def greet(reader, writer):
            writer.write(b"220 mail.example ESMTP ready\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(greet, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, PollerContext() as ctx:
            good = await run_check("tcp", validate("tcp", {
                "host": "127.0.0.1", "port": port, "banner": "ESMTP"}), ctx)
            bad = await run_check("tcp", validate("tcp", {
                "host": "127.0.0.1", "port": port, "banner": "SSH-2.0"}), ctx)
        return good, bad

    good, bad = asyncio.run(go())
    # Then the expected banner passes and the wrong one is critical, with what was read
    assert good.state == "ok"
    assert bad.state == "critical"
    assert bad.details["banner"].startswith("220 mail.example")


# --- HTTP --------------------------------------------------------------------------------

def test_http_status_and_keyword(http_target):
    # Given a page that answers 200 with a known body
    ok = check("http", {"url": http_target.url("/ok"), "keyword": "all systems nominal"})
    assert ok.state == "ok"
    assert ok.details["status"] == 200
    # When the keyword is missing, then critical naming it
    missing = check("http", {"url": http_target.url("/ok"), "keyword": "database error"})
    assert missing.state == "critical"
    assert "database error" in missing.message
    # When a forbidden keyword is present, then critical
    assert check("http", {"url": http_target.url("/ok"),
                          "keyword_absent": "nominal"}).state == "critical"


def test_http_unexpected_status_is_critical_and_expected_list_is_honoured(http_target):
    # Given a page answering 503
    outcome = check("http", {"url": http_target.url("/error")})
    assert outcome.state == "critical"
    assert outcome.details["status"] == 503
    # When 503 is declared expected (a maintenance page check), then ok
    assert check("http", {"url": http_target.url("/error"),
                          "expected_status": ["5xx"]}).state == "ok"


def test_http_redirect_policies(http_target):
    # Given /redirect sends to /ok on the same host
    followed = check("http", {"url": http_target.url("/redirect"), "keyword": "nominal"})
    assert followed.state == "ok"
    assert followed.details["final_url"].endswith("/ok")
    assert followed.details["redirects"] == [f"302 {http_target.url('/ok')}"]
    # When redirects are not followed, the 302 itself is judged (3xx accepted by default)
    plain = check("http", {"url": http_target.url("/redirect"), "redirects": "none",
                           "expected_status": ["200"]})
    assert plain.state == "critical" and plain.details["status"] == 302
    # When the policy is same_host, a redirect to another host name is critical
    offsite = check("http", {"url": http_target.url("/offsite"), "redirects": "same_host"})
    assert offsite.state == "critical"
    assert "off host" in offsite.message
    # And a redirect loop stops at max_redirects
    loop = check("http", {"url": http_target.url("/loop"), "max_redirects": 3})
    assert loop.state == "critical"
    assert len(loop.details["redirects"]) == 4


def test_http_latency_threshold_and_timeout(http_target):
    # Given a page that takes 1.5 s
    slow = check("http", {"url": http_target.url("/slow"), "latency_warning": 500,
                          "latency_critical": 5000})
    # Then it is a warning for latency
    assert slow.state == "warning"
    assert slow.value >= 1400
    # When the timeout is shorter than the page, then critical timeout
    timed_out = check("http", {"url": http_target.url("/slow"), "timeout": 0.3})
    assert timed_out.state == "critical"
    assert timed_out.details["error"] == "timeout"


def test_http_connection_refused_is_critical():
    outcome = check("http", {"url": f"http://127.0.0.1:{free_port()}/"})
    assert outcome.state == "critical"
    assert outcome.message.startswith("request failed")


def test_https_verified_against_configured_ca(ca):
    # Given an HTTPS server whose certificate comes from our test CA
    with HttpTarget(tls=ca.issue("https", days=90)) as target:
        # When the poller trusts that CA, the page is ok
        trusted = check("http", {"url": target.url("/ok", host="localhost")},
                        ca_file=ca.ca_file)
        # When it uses the system store, verification fails
        untrusted = check("http", {"url": target.url("/ok", host="localhost")})
        # When verification is turned off for the check, it is ok again
        unverified = check("http", {"url": target.url("/ok", host="localhost"),
                                    "verify_tls": False})
    assert trusted.state == "ok"
    assert untrusted.state == "critical"
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.message
    assert unverified.state == "ok"


# --- TLS certificate ---------------------------------------------------------------------

def test_tls_certificate_expiring_soon_is_critical(ca):
    # Given a TLS server with a certificate expiring in 5 days
    with HttpTarget(tls=ca.issue("soon", days=5)) as target:
        outcome = check("tls", {"host": "127.0.0.1", "port": target.port,
                                "server_name": "localhost", "ca_file": ca.ca_file,
                                "days_warning": 30, "days_critical": 7})
    # Then it is critical with the days left as the value; chain and name are fine
    assert outcome.state == "critical"
    assert 4.9 < outcome.value < 5.1
    assert outcome.details["chain_valid"] is True
    assert outcome.details["hostname_match"] is True
    assert "expires in 5.0 days" in outcome.message


def test_tls_certificate_warning_then_ok_by_days(ca):
    with HttpTarget(tls=ca.issue("month", days=20)) as target:
        base = {"host": "127.0.0.1", "port": target.port, "server_name": "localhost",
                "ca_file": ca.ca_file}
        warning = check("tls", {**base, "days_warning": 30, "days_critical": 7})
        fine = check("tls", {**base, "days_warning": 14, "days_critical": 7})
    assert warning.state == "warning"
    assert fine.state == "ok"
    assert "valid until" in fine.message


def test_tls_hostname_mismatch_and_untrusted_chain(ca):
    # Given a certificate for localhost from our CA
    with HttpTarget(tls=ca.issue("named", days=200)) as target:
        # When asked for another name, then critical: the certificate does not name it
        wrong_name = check("tls", {"host": "127.0.0.1", "port": target.port,
                                   "server_name": "intranet.example", "ca_file": ca.ca_file})
        # When verified against the system store only, then critical: chain not trusted
        untrusted = check("tls", {"host": "127.0.0.1", "port": target.port,
                                  "server_name": "localhost"})
        # When the IP address is the name, the IP SAN matches
        by_ip = check("tls", {"host": "127.0.0.1", "port": target.port,
                              "ca_file": ca.ca_file})
    assert wrong_name.state == "critical"
    assert wrong_name.details["hostname_match"] is False
    assert "does not name intranet.example" in wrong_name.message
    assert untrusted.state == "critical"
    assert untrusted.details["chain_valid"] is False
    assert "chain not trusted" in untrusted.message
    assert by_ip.state == "ok"


def test_tls_on_a_plain_port_is_critical(http_target):
    outcome = check("tls", {"host": "127.0.0.1", "port": http_target.port, "timeout": 3})
    assert outcome.state == "critical"


def test_hostname_matching_rules():
    assert hostname_matches("www.example.com", ["*.example.com"], [])
    assert not hostname_matches("a.b.example.com", ["*.example.com"], [])
    assert not hostname_matches("example.com", ["*.example.com"], [])
    assert hostname_matches("EXAMPLE.com.", ["example.COM"], [])
    assert hostname_matches("::1", [], ["0:0:0:0:0:0:0:1"])
    assert not hostname_matches("127.0.0.2", [], ["127.0.0.1"])


# --- ICMP --------------------------------------------------------------------------------

def _icmp_socket_available() -> bool:
    return Pinger().mode != "binary"


@pytest.mark.skipif(not _icmp_socket_available(),
                    reason="neither an ICMP datagram socket nor a raw socket is allowed here")
def test_ping_loopback_with_shared_socket():
    # Given 127.0.0.1; when pinged 5 times through the shared ICMP socket
    outcome = check("ping", {"host": "127.0.0.1", "count": 5, "interval": 0.05})
    # Then all replies came back and latency is measured
    assert outcome.state == "ok"
    assert outcome.details["received"] == 5
    assert outcome.details["loss_pct"] == 0
    assert outcome.details["mode"] in ("dgram", "raw")
    assert 0 <= outcome.value < 1000


@pytest.mark.skipif(not _icmp_socket_available(), reason="no ICMP socket")
def test_many_concurrent_pings_share_one_socket_and_match_replies():
    # Given one context; when 50 ping checks run at once against two addresses
    async def go():
        async with PollerContext() as ctx:
            configs = [validate("ping", {"host": f"127.0.0.{1 + i % 2}", "count": 2,
                                         "interval": 0.01}) for i in range(50)]
            outcomes = await asyncio.gather(*(run_check("ping", c, ctx) for c in configs))
            return outcomes, len(ctx.pinger()._socks)

    outcomes, sockets = asyncio.run(go())
    # Then every echo was answered and matched, using a single IPv4 socket
    assert sockets == 1
    assert all(o.state == "ok" and o.details["received"] == 2 for o in outcomes)
    assert {o.details["address"] for o in outcomes} == {"127.0.0.1", "127.0.0.2"}


@pytest.mark.skipif(not _icmp_socket_available(), reason="no ICMP socket")
def test_ping_without_reply_is_critical_with_full_loss():
    # Given a documentation address (TEST-NET-3) nothing answers from
    outcome = check("ping", {"host": "203.0.113.77", "count": 2, "interval": 0.05,
                             "timeout": 0.3})
    assert outcome.state == "critical"
    assert outcome.details["loss_pct"] == 100
    assert outcome.value is None


@pytest.mark.skipif(shutil.which("ping") is None, reason="no ping program installed")
def test_ping_fallback_to_system_binary():
    outcome = check("ping", {"host": "127.0.0.1", "count": 2}, ping_mode="binary")
    assert outcome.state == "ok"
    assert outcome.details["mode"] == "binary"


def test_ping_unresolvable_name_is_critical():
    outcome = check("ping", {"host": "no-such-host.invalid"})
    assert outcome.state == "critical"
    assert "cannot resolve" in outcome.message


# --- DNS ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dns_target():
    records = {("app.wk.test.", "A"): ["192.0.2.10", "192.0.2.11"],
               ("wk.test.", "MX"): ["10 mail.wk.test."],
               ("wk.test.", "TXT"): ['"v=spf1 -all"']}
    with DnsTarget(records) as target:
        yield target


def _dns(target, **config):
    return check("dns", {"nameserver": "127.0.0.1", "port": target.port, **config})


def test_dns_record_values(dns_target):
    # Given an authoritative server for wk.test
    ok = _dns(dns_target, name="app.wk.test", rtype="A", expected=["192.0.2.10"])
    assert ok.state == "ok"
    assert ok.details["values"] == ["192.0.2.10", "192.0.2.11"]
    # When all expected values must be present and one is not, then critical naming it
    missing = _dns(dns_target, name="app.wk.test", expected=["192.0.2.10", "192.0.2.99"],
                   match="all")
    assert missing.state == "critical"
    assert "192.0.2.99" in missing.message
    # When the exact set is required and the answer has more, then critical
    assert _dns(dns_target, name="app.wk.test", expected=["192.0.2.10"],
                match="exact").state == "critical"
    # MX and TXT compared in text form, trailing dots and quotes ignored
    assert _dns(dns_target, name="wk.test", rtype="MX",
                expected=["10 mail.wk.test"]).state == "ok"
    assert _dns(dns_target, name="wk.test", rtype="TXT",
                expected=["v=spf1 -all"]).state == "ok"


def test_dns_nxdomain_and_no_answer(dns_target):
    assert _dns(dns_target, name="gone.wk.test").details["error"] == "NXDOMAIN"
    no_answer = _dns(dns_target, name="app.wk.test", rtype="AAAA")
    assert no_answer.state == "critical"
    assert "no records" in no_answer.message


def test_dns_server_silent_is_critical_timeout():
    # Given a UDP port that swallows queries
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        outcome = check("dns", {"name": "x.wk.test", "nameserver": "127.0.0.1",
                                "port": silent.getsockname()[1], "timeout": 0.5})
    assert outcome.state == "critical"
    assert outcome.details["error"] == "timeout"


# --- SNMP --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def snmpd():
    if not os.path.exists(SNMPD):
        pytest.skip("Debian's snmpd is not installed")
    with SnmpTarget() as target:
        yield target


SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_LOCATION = "1.3.6.1.2.1.1.6.0"


def test_snmp_v2c_oid_value_and_threshold(snmpd):
    # Given snmpd with a v2c community; when sysLocation is compared with its expected text
    base = {"host": "127.0.0.1", "port": snmpd.port, "community": SNMP_COMMUNITY}
    located = check("snmp", {**base, "oid": SYS_LOCATION,
                             "expected": "watchkeeper-test-rack"})
    assert located.state == "ok"
    # When sysUpTime (timeticks) is judged against thresholds
    up = check("snmp", {**base, "oid": SYS_UPTIME, "value_critical": 1e12})
    assert up.state == "ok" and up.value >= 0
    low = check("snmp", {**base, "oid": SYS_UPTIME, "direction": "below",
                         "value_warning": 1e12, "value_critical": 1e11})
    assert low.state == "critical"
    # When the expected text differs, then critical showing both
    moved = check("snmp", {**base, "oid": SYS_LOCATION, "expected": "other-rack"})
    assert moved.state == "critical"
    assert "other-rack" in moved.message


def test_snmp_v3_auth_priv(snmpd):
    base = {"host": "127.0.0.1", "port": snmpd.port, "version": "3", "user": SNMP_USER,
            "auth_protocol": "sha", "auth_key": SNMP_AUTH_KEY, "priv_protocol": "aes",
            "priv_key": SNMP_PRIV_KEY}
    outcome = check("snmp", {**base, "oid": SYS_LOCATION, "expected": "watchkeeper-test-rack"})
    assert outcome.state == "ok"
    # With a wrong key the agent does not authenticate us: critical, not a crash
    wrong = check("snmp", {**base, "auth_key": "not-the-key", "oid": SYS_LOCATION,
                           "timeout": 0.5, "retries": 0})
    assert wrong.state == "critical"


def test_snmp_interface_oper_status(snmpd):
    # Given the loopback interface (ifIndex 1 on Linux) is up
    base = {"host": "127.0.0.1", "port": snmpd.port, "community": SNMP_COMMUNITY,
            "mode": "interface"}
    up = check("snmp", {**base, "if_index": 1})
    assert up.state == "ok"
    assert up.details["oper_status"] == "up"
    assert up.details["if_descr"] == "lo"
    # An interface index that does not exist is critical
    absent = check("snmp", {**base, "if_index": 9999})
    assert absent.state == "critical"
    assert "no such object" in absent.message


def test_snmp_wrong_community_times_out_as_critical(snmpd):
    outcome = check("snmp", {"host": "127.0.0.1", "port": snmpd.port, "community": "guess",
                             "oid": SYS_UPTIME, "timeout": 0.5, "retries": 0})
    assert outcome.state == "critical"


# --- config validation -------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "config", "field"), [
    ("tcp", {"host": "127.0.0.1"}, "port"),
    ("tcp", {"host": "127.0.0.1", "port": 70000}, "port"),
    ("http", {"url": "ftp://example.com/"}, "url"),
    ("http", {"url": "http://x/", "redirects": "sometimes"}, "redirects"),
    ("http", {"url": "http://x/", "expected_status": ["abc"]}, "expected_status"),
    ("tls", {"host": "x", "days_warning": 3, "days_critical": 10}, "days_warning"),
    ("dns", {"name": "x", "rtype": "ZZZ"}, "rtype"),
    ("dns", {"name": "x", "nameserver": "dns.example"}, "nameserver"),
    ("ping", {"host": "x", "loss_warning": 150}, "loss_warning"),
    ("snmp", {"host": "x", "oid": "sysUpTime", "community": "c"}, "oid"),
    ("snmp", {"host": "x", "version": "3", "user": "u", "auth_key": "short", "oid": "1.3"},
     "auth_key"),
    ("snmp", {"host": "x", "mode": "interface", "community": "c"}, "if_index"),
    ("nope", {}, "kind"),
])
def test_invalid_configs_name_the_field(kind, config, field):
    with pytest.raises(ConfigError) as caught:
        validate(kind, config)
    assert str(caught.value).startswith(field)


def test_tls_chain_uses_the_pollers_ca_file_when_the_check_names_none(ca):
    # Given a certificate from our CA and a poller configured to trust that CA
    with HttpTarget(tls=ca.issue("global-ca", days=120)) as target:
        config = {"host": "127.0.0.1", "port": target.port, "server_name": "localhost"}
        trusted = check("tls", config, ca_file=ca.ca_file)
        untrusted = check("tls", config)
    # Then the chain verifies with it and fails without it
    assert trusted.state == "ok" and trusted.details["chain_valid"] is True
    assert untrusted.details["chain_valid"] is False
