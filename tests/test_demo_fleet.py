"""Issue 11, defect 5: the demo has a living fleet. Simulated agents enroll with tokens and
check in over HTTP through the agent API of a running server (here pytest's live server):
devices with hardware, software, drives and history appear, failing ones raise alerts
through the real evaluation, heartbeats are pinged, scripts run, tickets exist in every
state with timelines and time, and a billing run is computed. A restarted fleet continues
as the same agents. Small N keeps it fast."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone

from watchkeeper.agents.choices import AgentStatus
from watchkeeper.agents.models import Agent, MetricSample, ScriptRun
from watchkeeper.agents.simulator import demo_fleet
from watchkeeper.agents.simulator.profiles import ClientInfo, fleet
from watchkeeper.core import demo
from watchkeeper.helpdesk.billing.models import BillingRun
from watchkeeper.helpdesk.choices import Status
from watchkeeper.helpdesk.models import Ticket
from watchkeeper.helpdesk.time.models import TimeEntry, Timer
from watchkeeper.inventory.models import Device, DeviceSection
from watchkeeper.monitoring.alerts import record_results
from watchkeeper.monitoring.evaluate import run_evaluation
from watchkeeper.monitoring.heartbeats.models import HeartbeatJob
from watchkeeper.monitoring.history.predictive import predictive_results
from watchkeeper.monitoring.models import Alert

DEVICES = 10


def test_profiles_are_deterministic_and_show_every_fault():
    clients = [ClientInfo(1, "Harbour View Dental", "Europe/London", (1,)),
               ClientInfo(2, "Kessler & Ortiz LLP", "America/New_York", (2, 3))]
    first, again = fleet(clients, 60), fleet(clients, 60)
    assert [p.hostname for p in first] == [p.hostname for p in again]
    assert len({p.hostname for p in first}) == 60
    faults = {f for p in first for f in p.faults}
    assert {"failing-drive", "disk-full", "stopped-service", "pending-updates",
            "offline"} <= faults
    # A working day in the client's time zone: busier at 11:00 than at 03:00 local
    ws = next(p for p in first if p.role == "workstation" and not p.faults)
    day = timezone.datetime(2026, 3, 4, 11, 0, tzinfo=ZoneInfo(ws.timezone))  # a Wednesday
    night = day.replace(hour=3)
    assert ws.metrics(day.timestamp())["cpu.percent"] > ws.metrics(night.timestamp())[
        "cpu.percent"] + 15


def test_demo_without_a_server_refuses_devices():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="give the server"):
        call_command("demo", "--devices", "5")


@pytest.mark.django_db(transaction=True)
def test_the_demo_fleet_checks_in_through_the_agent_api(live_server):
    call_command("signer", "--init")
    demo.load(out=lambda _line: None)
    before = timezone.now()
    fleet_ = demo_fleet.run(live_server.url, DEVICES, once=True, history_hours=1,
                            out=lambda _line: None)
    # Every device enrolled over HTTP and was approved by its auto-approving token
    assert fleet_.counters["enrolled"] == DEVICES and not fleet_.counters["enroll_refused"]
    agents = Agent.objects.filter(status=AgentStatus.APPROVED, device__isnull=False)
    assert agents.count() == DEVICES
    assert Device.objects.count() == DEVICES
    # with its hardware and software from the inventory check-in
    device = Device.objects.exclude(model="").first()
    assert device.manufacturer and device.os_name and device.serial
    assert DeviceSection.objects.filter(section="software").count() == DEVICES
    assert DeviceSection.objects.filter(section="drives").count() == DEVICES
    # readings now and an hour of history, sent as check-ins
    assert MetricSample.objects.filter(ts__gte=before - timedelta(minutes=1)).exists()
    assert MetricSample.objects.filter(ts__lte=before - timedelta(minutes=25)).exists()
    # The real evaluation raises the alerts the faults call for
    run_evaluation(now=timezone.now() + timedelta(seconds=1))
    record_results(predictive_results(list(Device.objects.values_list("id", flat=True)),
                                      timezone.now()))
    names = set(Alert.objects.values_list("check_name", flat=True))
    assert {"Reboot pending", "SMART health"} <= names, names
    # Heartbeats pinged over HTTP, scripts run (signed commands await the signer), tickets
    # in every state with their timelines and time, a timer running, a billing run
    assert HeartbeatJob.objects.filter(last_ping_at__isnull=False).count() == 2
    assert ScriptRun.objects.count() >= 2
    assert set(Ticket.objects.values_list("status", flat=True)) == set(Status.values)
    assert TimeEntry.objects.count() >= 6 and Timer.objects.count() == 1
    assert Ticket.objects.filter(entries__isnull=False).distinct().count() >= 9
    assert BillingRun.objects.count() == 1
    # A restarted fleet continues as the same agents: nothing enrolls twice
    again = demo_fleet.run(live_server.url, DEVICES, once=True, history_hours=1,
                           out=lambda _line: None)
    assert not again.counters["enrolled"] and Agent.objects.count() == DEVICES
    assert again.counters["http_200"] >= DEVICES
