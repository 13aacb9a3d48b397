"""Agent-side checks evaluated from check-in data: disk, CPU/memory over a window, services,
processes, pending reboot, agent offline (events), custom scripts (exit code, output)."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.monitoring_helpers import make_device
from watchkeeper.agents import actions as agent_actions
from watchkeeper.agents.checkin.writer import insert_samples
from watchkeeper.agents.choices import CommandStatus
from watchkeeper.agents.events import AgentOffline, AgentOnline, CommandFinished
from watchkeeper.core import events
from watchkeeper.inventory.models import DeviceSection
from watchkeeper.monitoring import actions, evaluate
from watchkeeper.monitoring.choices import CheckKind, Scope, State
from watchkeeper.monitoring.models import Alert, CheckState

pytestmark = pytest.mark.django_db


def _policy(owner, *checks):
    policy = actions.create_policy(actor=owner, name="Baseline")
    made = [actions.add_check(actor=owner, policy=policy, name=name, kind=kind, config=cfg)
            for name, kind, cfg in checks]
    actions.assign_policy(actor=owner, policy=policy, scope=Scope.GLOBAL)
    return made


def _states(results):
    return {r.check_id: r.state for r in results}


def test_disk_used_percent_and_free_space_per_mount(owner, client_a):
    disk, data = _policy(owner,
                         ("Disk", CheckKind.DISK, {"warning": 80, "critical": 90}),
                         ("Data free", CheckKind.DISK, {"mount": "/data", "warning": 101,
                                                        "free_critical_bytes": 5 * 2**30}))
    device = make_device(client_a, "srv-01")
    now = timezone.now()
    insert_samples(device.pk, now - timedelta(seconds=5), {
        "disk.used_percent:/": 85.0, "disk.free_bytes:/": 40 * 2**30,
        "disk.used_percent:/data": 50.0, "disk.free_bytes:/data": 2 * 2**30})
    results = evaluate.evaluate_devices([device.pk], now)
    by_check = {r.check_id: r for r in results}
    # The worst mount decides the generic check; its message names the mount
    assert by_check[disk.pk].state == State.WARNING and "/ 85.0%" in by_check[disk.pk].message
    # The /data check is critical on free space although its used % is fine
    assert by_check[data.pk].state == State.CRITICAL


def test_cpu_is_judged_on_the_average_over_its_window(owner, client_a):
    (cpu,) = _policy(owner, ("CPU", CheckKind.CPU, {"warning": 80, "critical": 95,
                                                     "window_minutes": 10}))
    device = make_device(client_a, "srv-01")
    now = timezone.now()
    # A single spike among calm samples: not sustained
    for i, value in enumerate([10, 12, 99, 11, 10]):
        insert_samples(device.pk, now - timedelta(minutes=9 - 2 * i), {"cpu.percent": value})
    assert _states(evaluate.evaluate_devices([device.pk], now))[cpu.pk] == State.OK
    # Sustained load over the window on another device
    busy = make_device(client_a, "srv-02")
    for i in range(5):
        insert_samples(busy.pk, now - timedelta(minutes=9 - 2 * i), {"cpu.percent": 90.0})
    # and load older than the window does not count
    insert_samples(device.pk, now - timedelta(minutes=30), {"cpu.percent": 100.0})
    states = _states(evaluate.evaluate_devices([busy.pk], now))
    assert states[cpu.pk] == State.WARNING
    assert _states(evaluate.evaluate_devices([device.pk], now))[cpu.pk] == State.OK


def test_service_process_and_reboot_from_inventory(owner, client_a):
    svc, proc, reboot = _policy(
        owner, ("sshd", CheckKind.SERVICE, {"service": "ssh"}),
        ("nginx", CheckKind.PROCESS, {"process": "nginx"}),
        ("Reboot", CheckKind.REBOOT, {}))
    device = make_device(client_a, "srv-01", reboot_required=True)
    DeviceSection.objects.create(device=device, section="services", data=[
        {"name": "ssh", "state": "stopped", "enabled": True}])
    DeviceSection.objects.create(device=device, section="ports", data=[
        {"proto": "tcp", "address": "0.0.0.0", "port": 80, "process": "nginx"}])
    states = _states(evaluate.evaluate_devices([device.pk]))
    assert states == {svc.pk: State.CRITICAL, proc.pk: State.OK, reboot.pk: State.WARNING}


def test_scheduled_evaluation_takes_each_slice_once(owner, client_a):
    _policy(owner, ("Disk", CheckKind.DISK, {"warning": 80, "critical": 90}))
    device = make_device(client_a, "srv-01")
    now = timezone.now()
    insert_samples(device.pk, now - timedelta(seconds=10), {"disk.used_percent:/": 95.0})
    assert evaluate.run_evaluation(now)["devices"] == 1
    # The next run starts where the last stopped: nothing new, nothing counted again
    assert evaluate.run_evaluation(now + timedelta(seconds=15))["devices"] == 0
    assert Alert.objects.get().count == 1


def _enrolled_device(client):
    from watchkeeper.core.models import Site

    site = Site.objects.create(client=client, name="HQ")
    token, _ = agent_actions.create_enrollment_token(actor=None, client=client, site=site,
                                                     note="t")
    agent = agent_actions.enroll_agent(
        token=token, public_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        facts={"hostname": "ws-07"})
    return agent_actions.approve_agent(actor=None, agent=agent)


def test_agent_offline_and_back_through_the_agents_events(owner, client_a):
    (offline,) = _policy(owner, ("Agent offline", CheckKind.AGENT_OFFLINE, {}))
    agent = _enrolled_device(client_a)
    # When the agents app announces the agent offline
    events.emit(AgentOffline.of(agent), client=client_a.pk)
    events.dispatch_due()
    alert = Alert.objects.get()
    assert alert.device_id == agent.device_id and alert.severity == State.CRITICAL
    # And online again
    events.emit(AgentOnline.of(agent), client=client_a.pk)
    events.dispatch_due()
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_script_check_maps_exit_code_and_keeps_output(owner, client_a):
    agent = _enrolled_device(client_a)
    script = agent_actions.create_script(actor=None, name="Backup age", language="bash",
                                         body="exit 2")
    (check,) = _policy(owner, ("Backup age", CheckKind.SCRIPT, {"script_id": script.pk}))
    run = agent_actions.run_script(actor=None, version=script.current, target_kind="device",
                                   target=agent.device)
    command = run.commands.get()
    from watchkeeper.agents.models import Command

    Command.objects.filter(pk=command.pk).update(
        status=CommandStatus.FAILED, exit_code=2, finished_at=timezone.now(),
        stdout="CRITICAL: last backup 49 hours ago\nsecond line")
    events.emit(CommandFinished.of(Command.objects.get(pk=command.pk), agent=agent,
                                   status=CommandStatus.FAILED, exit_code=2),
                client=client_a.pk)
    events.dispatch_due()
    state = CheckState.objects.get(check_template=check)
    assert state.state == State.CRITICAL
    assert state.message == "CRITICAL: last backup 49 hours ago"
    assert "second line" in state.output
    assert Alert.objects.get().summary == "CRITICAL: last backup 49 hours ago"
