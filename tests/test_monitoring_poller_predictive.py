"""Predictive checks: disk-full forecast from the stored rollup trend (critical / warning
by days left, the worst mount wins, flat disks are fine), SMART pre-failure from the
agent's disk inventory when present."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watchkeeper.agents.models import MetricName
from watchkeeper.inventory.actions import create_device
from watchkeeper.inventory.models import DeviceSection
from watchkeeper.monitoring import actions as mon_actions
from watchkeeper.monitoring import predictive
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


def smart_disk(name, status="PASSED", attributes=()):
    return {"device": name, "mountpoint": "/", "smart_status": status,
            "smart_attributes": list(attributes)}


def test_smart_pre_failure_is_critical(client_a, device):
    check = assign(client_a, device, "smart")
    DeviceSection.objects.create(device=device, section="disks", data=[
        smart_disk("/dev/sda"),
        smart_disk("/dev/sdb", attributes=[
            {"id": 1, "name": "Raw_Read_Error_Rate", "value": 5, "thresh": 6,
             "type": "Pre-fail", "raw": 0}]),
    ])
    predictive.run_predictive(NOW)
    state = CheckState.objects.get(check_template=check)
    assert state.state == "critical"
    assert "/dev/sdb: Raw_Read_Error_Rate at 5 (threshold 6): pre-failure" in state.message


def test_smart_reallocated_sectors_warn_and_healthy_is_ok(client_a, device):
    check = assign(client_a, device, "smart")
    section = DeviceSection.objects.create(device=device, section="disks", data=[
        smart_disk("/dev/nvme0", attributes=[
            {"id": 5, "name": "Reallocated_Sector_Ct", "value": 100, "thresh": 10,
             "type": "Pre-fail", "raw": "8"}])])
    predictive.run_predictive(NOW)
    assert CheckState.objects.get(check_template=check).state == "warning"
    section.data = [smart_disk("/dev/nvme0")]
    section.save()
    predictive.run_predictive(NOW + timedelta(hours=1))
    assert CheckState.objects.get(check_template=check).state == "ok"


def test_disks_without_smart_data_report_nothing(client_a, device):
    check = assign(client_a, device, "smart")
    DeviceSection.objects.create(device=device, section="disks",
                                 data=[{"mountpoint": "/", "total_bytes": 100}])
    predictive.run_predictive(NOW)
    assert not CheckState.objects.filter(check_template=check).exists()
