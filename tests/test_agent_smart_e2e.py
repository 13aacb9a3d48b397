"""SMART end to end: the real agent process reads drives through a fake smartctl (recorded
smartctl 7 JSON: a healthy SSD, a failing disk, a worn NVMe drive, a disk that cannot be
opened), checks in to the real server on a loopback port, and the smart check assigned by
policy raises a critical alert for the failing drives."""

from __future__ import annotations

import pytest

from tests.smartctl_fake import make_fake_smartctl, path_with
from tests.test_agent_e2e import make_agent, server, signer_key, site  # noqa: F401 (fixtures)
from watchkeeper.inventory.models import DeviceChange, DeviceSection
from watchkeeper.monitoring import actions as mon_actions
from watchkeeper.monitoring.history.predictive import run_predictive
from watchkeeper.monitoring.models import Alert, CheckState

pytestmark = pytest.mark.django_db(transaction=True)


def smart_policy(device):
    policy = mon_actions.create_policy(actor=None, name="Drive health", client=device.client)
    check = mon_actions.add_check(actor=None, policy=policy, name="SMART", kind="smart",
                                  config={})
    mon_actions.assign_policy(actor=None, policy=policy, scope="device", target=device)
    return check


def test_agent_reads_smart_and_a_failing_drive_raises_a_critical_alert(
        make_agent, tmp_path, monkeypatch):  # noqa: F811
    # Given smartctl on the endpoint (the fake, first on PATH for the agent process)
    fake = make_fake_smartctl(tmp_path)
    monkeypatch.setenv("PATH", path_with(fake))
    # and an approved agent whose device has a SMART check by policy
    cli, agent = make_agent()
    check = smart_policy(agent.device)

    # When the agent collects its inventory and checks in
    run = cli.once(inventory="always")
    assert run.returncode == 0, run.stderr
    assert run.json["outcome"] == "ok" and run.json["spooled"] == 0

    # Then it scanned and read each drive with its type, and the server holds them all
    calls = fake.calls()
    assert calls[0] == ["--scan-open", "-j"]
    assert [c[-1] for c in calls[1:]] == ["/dev/sda", "/dev/sdb", "/dev/nvme0", "/dev/sdc"]
    section = DeviceSection.objects.get(device=agent.device, section="drives")
    drives = {d["device"]: d for d in section.data}
    assert drives["/dev/sda"]["smart_status"] == "passed"
    assert drives["/dev/sdb"]["serial"] == "WD-WCC7K4XJ2R3D"
    assert drives["/dev/nvme0"]["critical_warning"] == 1
    assert drives["/dev/sdc"]["smart_status"] == "unknown"
    assert "No such device" in drives["/dev/sdc"]["error"]
    agent.refresh_from_db()
    assert "drives" in agent.inventory_hashes

    # When the predictive job runs
    counters = run_predictive()
    # Then the SMART check is critical, and its alert names the failing drives
    assert counters["readings"] >= 1
    state = CheckState.objects.get(check_template=check, device=agent.device)
    assert state.state == "critical"
    assert state.message == (
        "/dev/sdb (WDC WD40EFRX-68N32N0 WD-WCC7K4XJ2R3D): SMART overall health FAILED, "
        "Raw_Read_Error_Rate at 38 (threshold 51): pre-failure, Reallocated_Sector_Ct = 1464, "
        "Current_Pending_Sector = 16; "
        "/dev/nvme0 (Samsung SSD 970 EVO Plus 1TB S4EWNF0M812345K): SMART overall health "
        "FAILED, NVMe critical warning 0x01: available spare below threshold, 12 media and "
        "data integrity errors, 103% of rated endurance used; "
        "not readable: /dev/sdc")
    alert = Alert.objects.get(device=agent.device)
    assert alert.severity == "critical" and "pre-failure" in alert.summary

    # When the agent only sends metrics (no inventory due), SMART is not read again
    before = len(fake.calls())
    assert cli.once(inventory="never").returncode == 0
    assert len(fake.calls()) == before


def test_a_drive_swapped_and_healthy_again_clears_the_alert(
        make_agent, tmp_path, monkeypatch):  # noqa: F811
    import json
    import shutil

    from tests.smartctl_fake import FLEET

    # Given an endpoint with only the failing disk
    payloads = tmp_path / "payloads"
    payloads.mkdir()
    scan = json.loads((FLEET / "scan-open.json").read_text())
    scan["devices"] = [d for d in scan["devices"] if d["name"] == "/dev/sdb"]
    (payloads / "scan-open.json").write_text(json.dumps(scan))
    shutil.copy(FLEET / "sdb.json", payloads / "sdb.json")
    monkeypatch.setenv("PATH", path_with(make_fake_smartctl(tmp_path, payloads)))
    cli, agent = make_agent()
    check = smart_policy(agent.device)
    assert cli.once(inventory="always").returncode == 0
    run_predictive()
    assert CheckState.objects.get(check_template=check).state == "critical"

    # When the disk is replaced by a healthy one on the same port and the agent reports
    healthy = json.loads((FLEET / "sda.json").read_text())
    healthy["device"]["name"] = healthy["device"]["info_name"] = "/dev/sdb"
    (payloads / "sdb.json").write_text(json.dumps(healthy))
    assert cli.once(inventory="always").returncode == 0
    run_predictive()

    # Then the check is ok again, and the swap is on the device's timeline
    assert CheckState.objects.get(check_template=check).state == "ok"
    swap = DeviceChange.objects.get(device=agent.device, subject="drive /dev/sdb")
    assert swap.kind == "hardware_changed"
    assert swap.before == "WDC WD40EFRX-68N32N0 WD-WCC7K4XJ2R3D"
    assert swap.after == "Samsung SSD 860 EVO 500GB S3Z2NB0K712345A"
