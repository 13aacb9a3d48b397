"""Predictive checks: disk-full forecast from the stored rollup trend (critical / warning
by days left, the worst mount wins, flat disks are fine), SMART pre-failure from the
agent's "drives" inventory section (smartctl's ATA attributes and NVMe health log)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watchkeeper.agents.models import MetricName
from watchkeeper.inventory.actions import create_device
from watchkeeper.inventory.models import DeviceSection
from watchkeeper.monitoring import actions as mon_actions
from watchkeeper.monitoring.history import predictive
from watchkeeper.monitoring.models import Alert, CheckState, MetricRollup

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def device(client_a):
    return create_device(actor=None, client=client_a, name="fileserver")


def assign(client_a, device, kind, config=None):
    policy = mon_actions.create_policy(actor=None, name=f"Predict {kind}", client=client_a)
    check = mon_actions.add_check(actor=None, policy=policy, name=f"{kind} check", kind=kind,
                                  config=config or {})
    mon_actions.assign_policy(actor=None, policy=policy, scope="device", target=device)
    return check


def trend(device, mount, start_value, per_day, days=7, resolution=3600):
    metric, _ = MetricName.objects.get_or_create(name=f"disk.used_percent:{mount}")
    steps = int(days * 86400 / resolution)
    MetricRollup.objects.bulk_create([
        MetricRollup(resolution=resolution, device=device, metric=metric,
                     bucket=NOW - timedelta(seconds=(steps - i) * resolution), count=2,
                     total=2 * (start_value + per_day * i * resolution / 86400),
                     minimum=0, maximum=100)
        for i in range(steps)])


def test_fit_recovers_a_line():
    points = [(NOW - timedelta(days=d), 90.0 - 2 * d) for d in range(7)]
    forecast = predictive.fit(points, NOW)
    assert forecast.slope_per_day == pytest.approx(2.0)
    assert forecast.current == pytest.approx(90.0)
    assert forecast.days_until_full == pytest.approx(5.0)
    flat = predictive.fit([(NOW - timedelta(hours=h), 40.0) for h in range(10)], NOW)
    assert flat.days_until_full is None
    assert predictive.fit([(NOW, 1.0)], NOW) is None


def test_disk_filling_fast_is_critical_and_the_worst_mount_wins(client_a, device):
    # Given / growing 2 points a day to ~96 % and /data flat at 50 %
    check = assign(client_a, device, "disk_forecast")
    trend(device, "/", 82.0, 2.0)
    trend(device, "/data", 50.0, 0.0)
    # When the predictive job runs
    counters = predictive.run_predictive(NOW)
    # Then one critical alert says when / is full
    assert counters["devices"] == 1 and counters["readings"] == 1
    state = CheckState.objects.get(check_template=check, device=device)
    assert state.state == "critical"
    assert state.value == pytest.approx(2.0, abs=0.2)
    alert = Alert.objects.get()
    assert alert.severity == "critical" and "/: 96% used" in alert.summary
    assert "full in 2.0 days" in alert.summary


def test_slow_growth_is_a_warning_and_thresholds_are_configurable(client_a, device):
    check = assign(client_a, device, "disk_forecast", {"days_warning": 30,
                                                        "days_critical": 5})
    trend(device, "/", 83.0, 1.0)  # ~90 % now, full in ~10 days
    predictive.run_predictive(NOW)
    state = CheckState.objects.get(check_template=check)
    assert state.state == "warning"
    assert 9 < state.value < 11


def test_short_history_uses_five_minute_rollups_and_too_little_reports_nothing(
        client_a, device):
    check = assign(client_a, device, "disk_forecast", {"lookback_days": 1})
    trend(device, "/", 99.0, 0.5, days=0.02, resolution=300)  # 5 points only
    predictive.run_predictive(NOW)
    assert not CheckState.objects.filter(check_template=check).exists()
    trend(device, "/var", 97.0, 2.0, days=0.5, resolution=300)
    predictive.run_predictive(NOW)
    assert CheckState.objects.get(check_template=check).state == "critical"


def drive(name, status="passed", attributes=(), **extra):
    """A drive as the agent reports it in the "drives" section (from smartctl's JSON)."""
    return {"device": name, "model": "WDC WD40EFRX-68N32N0", "serial": f"WD-{name[-3:]}",
            "smart_status": status, "attributes": list(attributes), **extra}


def attr(aid, name, value, thresh, raw=0, prefailure=True, when_failed=""):
    return {"id": aid, "name": name, "value": value, "worst": value, "thresh": thresh,
            "when_failed": when_failed, "prefailure": prefailure, "raw": raw}


def drives(device, *rows):
    return DeviceSection.objects.create(device=device, section="drives", data=list(rows))


def test_smart_pre_failure_is_critical(client_a, device):
    check = assign(client_a, device, "smart")
    drives(device, drive("/dev/sda"),
           drive("/dev/sdb", attributes=[attr(1, "Raw_Read_Error_Rate", 5, 6)]))
    predictive.run_predictive(NOW)
    state = CheckState.objects.get(check_template=check)
    assert state.state == "critical"
    assert state.message == ("/dev/sdb (WDC WD40EFRX-68N32N0 WD-sdb): Raw_Read_Error_Rate "
                             "at 5 (threshold 6): pre-failure")


def test_smart_overall_failed_is_critical_even_with_attributes_in_range(client_a, device):
    check = assign(client_a, device, "smart")
    drives(device, drive("/dev/sda", status="failed",
                         attributes=[attr(1, "Raw_Read_Error_Rate", 100, 6)]))
    predictive.run_predictive(NOW)
    state = CheckState.objects.get(check_template=check)
    assert state.state == "critical" and "SMART overall health FAILED" in state.message


def test_smart_reallocated_sectors_warn_and_healthy_is_ok(client_a, device):
    check = assign(client_a, device, "smart")
    section = drives(device, drive("/dev/sda", attributes=[
        attr(5, "Reallocated_Sector_Ct", 100, 10, raw=8)]))
    predictive.run_predictive(NOW)
    state = CheckState.objects.get(check_template=check)
    assert state.state == "warning" and state.message.endswith("Reallocated_Sector_Ct = 8")
    section.data = [drive("/dev/sda", attributes=[attr(5, "Reallocated_Sector_Ct", 100, 10)])]
    section.save()
    predictive.run_predictive(NOW + timedelta(hours=1))
    state = CheckState.objects.get(check_template=check)
    assert state.state == "ok" and state.message == "SMART healthy on 1 drive(s)"


def test_old_age_attribute_failing_now_or_in_the_past_warns(client_a, device):
    # A usage (old-age) attribute at its threshold means wear, not imminent failure;
    # smartctl's when_failed "past" says it was there once.
    check = assign(client_a, device, "smart")
    drives(device, drive("/dev/sda", attributes=[
        attr(177, "Wear_Leveling_Count", 5, 5, prefailure=False, when_failed="now"),
        attr(3, "Spin_Up_Time", 90, 21, when_failed="past")]))
    predictive.run_predictive(NOW)
    state = CheckState.objects.get(check_template=check)
    assert state.state == "warning"
    assert "Wear_Leveling_Count at 5 (threshold 5): old-age attribute past its limit" in (
        state.message)
    assert "Spin_Up_Time fell to its threshold (21) in the past" in state.message


@pytest.mark.parametrize(("health", "state", "message"), [
    ({"critical_warning": 1, "available_spare": 4, "available_spare_threshold": 10},
     "critical", "NVMe critical warning 0x01: available spare below threshold"),
    ({"critical_warning": 0x0c}, "critical",
     "NVMe critical warning 0x0c: reliability degraded by media or internal errors, "
     "media in read-only mode"),
    ({"critical_warning": 0, "available_spare": 4, "available_spare_threshold": 10},
     "critical", "available spare 4% below its threshold 10%"),
    ({"critical_warning": 0, "media_errors": 12}, "warning",
     "12 media and data integrity errors"),
    ({"critical_warning": 0, "percentage_used": 100}, "warning",
     "100% of rated endurance used"),
    ({"critical_warning": 0, "available_spare": 100, "available_spare_threshold": 10,
      "percentage_used": 99, "media_errors": 0}, "ok", "SMART healthy on 1 drive(s)"),
])
def test_nvme_health_log(client_a, device, health, state, message):
    check = assign(client_a, device, "smart")
    drives(device, drive("/dev/nvme0", protocol="NVMe", **health))
    predictive.run_predictive(NOW)
    result = CheckState.objects.get(check_template=check)
    assert result.state == state
    assert result.message.endswith(message)
    if state == "critical":
        assert Alert.objects.get().severity == "critical"


def test_unreadable_drives_decide_nothing_and_are_named(client_a, device):
    check = assign(client_a, device, "smart")
    section = drives(device, drive("/dev/sdc", status="unknown",
                                   error="Smartctl open device: /dev/sdc failed"))
    predictive.run_predictive(NOW)
    assert not CheckState.objects.filter(check_template=check).exists()
    section.data = [*section.data, drive("/dev/sda")]
    section.save()
    predictive.run_predictive(NOW)
    state = CheckState.objects.get(check_template=check)
    assert state.state == "ok"
    assert state.message == "SMART healthy on 1 drive(s); not readable: /dev/sdc"


def test_devices_without_drives_report_nothing(client_a, device):
    check = assign(client_a, device, "smart")
    # The old disk rows never carry SMART; an empty drives section (smartctl found none,
    # as in a virtual machine) is no reading either.
    DeviceSection.objects.create(device=device, section="disks",
                                 data=[{"mountpoint": "/", "total_bytes": 100}])
    drives(device)
    predictive.run_predictive(NOW)
    assert not CheckState.objects.filter(check_template=check).exists()
