"""The poller process: sweep, claim, bounded concurrency, sharding, results into the alert
state machine and the run history, secrets sealed at rest, the `watchkeeper poller`
command. Real targets on loopback."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.monitoring_targets import HttpTarget, free_port
from watchkeeper.monitoring import actions as mon_actions
from watchkeeper.monitoring.choices import AlertStatus
from watchkeeper.monitoring.models import Alert, Check, CheckState, PollSample
from watchkeeper.monitoring.poller.engine import (
    Poller,
    claim,
    masked,
    next_run,
    open_secrets,
    prepare,
    run_now,
    seal_secrets,
)
from watchkeeper.monitoring.selectors import due_server_checks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("msp_probes")]


@pytest.fixture
def http_target():
    with HttpTarget() as target:
        yield target


@pytest.fixture
def policy(client_a):
    return mon_actions.create_policy(actor=None, name="Network", client=client_a)


def add(policy, name, kind, config, **fields):
    return mon_actions.add_check(actor=None, policy=policy, name=name, kind=kind,
                                 config=config, **fields)


def run_once(**options):
    return asyncio.run(Poller(**options).run_once())


def test_due_checks_run_and_feed_the_alert_state_machine(policy, http_target):
    # Given an HTTP check of a healthy page and a TCP check of a closed port, both due
    web = add(policy, "Web", "http", {"url": http_target.url("/ok")})
    port = add(policy, "Admin port", "tcp", {"host": "127.0.0.1", "port": free_port(),
                                              "timeout": 2})
    # When the poller runs what is due
    stats = run_once()
    # Then both ran; the closed port opened one critical alert, the page none
    assert stats.claimed == 2 and stats.recorded == 2
    assert CheckState.objects.get(check_template=web).state == "ok"
    assert CheckState.objects.get(check_template=port).state == "critical"
    alert = Alert.objects.get()
    assert alert.check_template_id == port.pk
    assert alert.severity == "critical" and alert.status == AlertStatus.OPEN
    # And each run left a history row with its measurement
    sample = PollSample.objects.get(check_template=web)
    assert sample.state == "ok" and sample.value > 0
    # And both were rescheduled about one interval ahead (jitter at most 10 %)
    for check in Check.objects.filter(pk__in=[web.pk, port.pk]):
        ahead = (check.next_run_at - timezone.now()).total_seconds()
        assert 60 * 0.9 - 5 <= ahead <= 60 * 1.1
    # When the poller sweeps again at once, nothing is due
    assert run_once().claimed == 0


def test_repeat_failures_do_not_duplicate_and_recovery_resolves(policy):
    # Given a TCP check of a port that is closed
    listener_port = free_port()
    check = add(policy, "SSH", "tcp", {"host": "127.0.0.1", "port": listener_port,
                                       "timeout": 2})
    run_once()
    # When it fails again on the next two runs
    for _ in range(2):
        Check.objects.filter(pk=check.pk).update(next_run_at=timezone.now())
        run_once()
    # Then there is still one alert, with its repeats counted
    alert = Alert.objects.get()
    assert alert.count == 3 and alert.status == AlertStatus.OPEN
    # When the port opens, the next run resolves the alert
    with socket.socket() as server:
        server.bind(("127.0.0.1", listener_port))
        server.listen()
        Check.objects.filter(pk=check.pk).update(next_run_at=timezone.now())
        run_once()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert Alert.objects.count() == 1


def test_claim_is_won_once(policy, http_target):
    # Given three due checks swept by two pollers at the same moment
    for i in range(3):
        add(policy, f"Web {i}", "http", {"url": http_target.url("/ok")})
    now = timezone.now()
    sweep_a = due_server_checks(now)
    sweep_b = due_server_checks(now)
    assert len(sweep_a) == len(sweep_b) == 3
    # When both claim, the first wins all and the second none
    assert len(claim(sweep_a, now)) == 3
    assert claim(sweep_b, now) == []


def test_shards_split_checks_without_overlap(policy, http_target):
    ids = {add(policy, f"Web {i}", "http", {"url": http_target.url("/ok")}).pk
           for i in range(10)}
    now = timezone.now()
    shards = [{d.id for d in due_server_checks(now, shard, 3)} for shard in range(3)]
    assert set().union(*shards) == ids
    assert sum(len(s) for s in shards) == len(ids)
    assert all(d.id % 3 == 1 for d in due_server_checks(now, 1, 3))


def test_disabled_checks_and_policies_are_not_swept(policy, http_target, client_a):
    add(policy, "Off", "http", {"url": http_target.url("/ok")}, is_enabled=False)
    other = mon_actions.create_policy(actor=None, name="Paused", client=client_a,
                                      is_enabled=False)
    add(other, "Paused web", "http", {"url": http_target.url("/ok")})
    assert due_server_checks(timezone.now()) == []


def test_concurrency_is_bounded(policy, http_target):
    # Given 20 due checks of a page that holds each request 0.2 s
    for i in range(20):
        add(policy, f"Hold {i}", "http", {"url": http_target.url("/hold")})
    # When the poller runs them with at most 5 in flight
    stats = run_once(concurrency=5)
    # Then all ran, never more than 5 at the server at once, and the bound was used
    assert stats.recorded == 20
    assert http_target.server.in_flight_max <= 5
    assert stats.in_flight_max == 5


def test_device_bound_check_targets_the_device_ip(policy, client_a, http_target):
    # Given a device whose primary IP is loopback and a TCP check bound to it, no host
    from watchkeeper.inventory.actions import create_device

    device = create_device(actor=None, client=client_a, name="core-sw",
                           primary_ip="127.0.0.1")
    add(policy, "Mgmt port", "tcp", {"port": http_target.port}, device=device)
    # When it runs
    run_once()
    # Then it connected to the device's address, and the state row names the device
    state = CheckState.objects.get()
    assert state.state == "ok" and state.device_id == device.pk
    assert "127.0.0.1" in PollSample.objects.get().message


def test_broken_config_is_unknown_not_a_crash(policy):
    add(policy, "No target", "tcp", {"port": 22})  # no host and no device
    stats = run_once()
    assert stats.config_errors == 1
    assert CheckState.objects.get().state == "unknown"


def test_snmp_secrets_are_sealed_at_rest():
    # Given an SNMP config with a community; when sealed for storage
    sealed = seal_secrets("snmp", {"host": "10.0.0.1", "community": "s3cret", "oid": "1.3.6"})
    # Then the stored form does not contain it, and opening gives it back
    assert "s3cret" not in json.dumps(sealed)
    assert open_secrets("snmp", sealed)["community"] == "s3cret"
    assert masked("snmp", sealed)["community"] == "••••••"
    assert prepare("snmp", sealed)["community"] == "s3cret"
    # Sealing twice keeps it sealed once
    assert seal_secrets("snmp", sealed) == sealed


def test_next_run_is_jittered_and_spreads_a_backlog():
    now = timezone.now()
    on_time = [next_run(now, now - timedelta(seconds=1), 60) for _ in range(50)]
    assert all(timedelta(seconds=54) <= t - now <= timedelta(seconds=66) for t in on_time)
    assert len({t for t in on_time}) > 1
    overdue = [next_run(now, now - timedelta(hours=2), 60) for _ in range(50)]
    assert all(timedelta(0) <= t - now <= timedelta(seconds=60) for t in overdue)


def test_run_now_checks_without_recording(http_target, db):
    outcome = run_now("http", {"url": http_target.url("/error")})
    assert outcome.state == "critical" and "503" in outcome.message
    assert PollSample.objects.count() == 0


def test_poller_command_once(policy, http_target):
    add(policy, "Web", "http", {"url": http_target.url("/ok")})
    out = io.StringIO()
    call_command("poller", "--once", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["ran"] == 1 and summary["ok"] == 1


def test_poller_loop_stops_on_request(policy, http_target):
    # Given a due check and a running poller loop; when asked to stop after its first
    # flush, it finishes, having recorded the run
    add(policy, "Web", "http", {"url": http_target.url("/ok")})

    async def go():
        poller = Poller(tick=0.05, flush_every=0.0)
        stop = asyncio.Event()

        async def stopper():
            while poller.stats.recorded < 1:
                await asyncio.sleep(0.02)
            stop.set()

        await asyncio.gather(poller.run(stop), stopper())
        return poller.stats

    stats = asyncio.run(go())
    assert stats.recorded == 1
    assert PollSample.objects.count() == 1
