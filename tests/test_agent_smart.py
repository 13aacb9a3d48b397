"""The agent's SMART collector (collectors/smart.py) against a fake smartctl replaying
recorded smartctl 7 JSON (tests/smartctl/fleet), and against the real smartctl when this
machine has one. This machine has no physical disks, so the real one finds none."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from watchkeeper_agent.collectors import for_platform
from watchkeeper_agent.collectors.base import Collector
from watchkeeper_agent.collectors.smart import describe_exit_status, read_drives

from tests.smartctl_fake import FLEET, make_fake_smartctl, path_with
from watchkeeper.agents.checkin.validation import validate_section


def by_device(drives):
    return {d["device"]: d for d in drives}


def script(where: Path, body: str) -> str:
    """A stand-in smartctl written as a small shell script."""
    where.mkdir(parents=True, exist_ok=True)
    path = where / "smartctl"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_reads_every_drive_the_scan_finds_with_its_type(tmp_path):
    # Given smartctl answering for a healthy SSD, a failing disk, a worn NVMe and a lost disk
    fake = make_fake_smartctl(tmp_path)
    # When the collector reads them
    drives = by_device(read_drives(fake.path))
    # Then it scanned once and read each device with the type the scan named
    calls = fake.calls()
    assert calls[0] == ["--scan-open", "-j"]
    assert calls[1:] == [["-i", "-H", "-A", "-j", "-d", t, d] for d, t in (
        ("/dev/sda", "sat"), ("/dev/sdb", "sat"), ("/dev/nvme0", "nvme"), ("/dev/sdc", "sat"))]
    assert list(drives) == ["/dev/sda", "/dev/sdb", "/dev/nvme0", "/dev/sdc"]

    ssd = drives["/dev/sda"]
    assert (ssd["model"], ssd["serial"], ssd["capacity_bytes"]) == (
        "Samsung SSD 860 EVO 500GB", "S3Z2NB0K712345A", 500107862016)
    assert ssd["smart_status"] == "passed" and ssd["media"] == "ssd"
    assert (ssd["temperature_c"], ssd["power_on_hours"], ssd["exit_status"]) == (31, 12034, 0)
    assert {"id": 5, "name": "Reallocated_Sector_Ct", "value": 100, "worst": 100, "thresh": 10,
            "when_failed": "", "prefailure": True, "raw": 0} in ssd["attributes"]
    assert "critical_warning" not in ssd  # NVMe fields only for NVMe drives


def test_higher_exit_bits_still_come_with_the_data(tmp_path):
    fake = make_fake_smartctl(tmp_path)
    drives = by_device(read_drives(fake.path))
    # The failing disk: exit status 24 = DISK FAILING + pre-fail attribute below threshold
    hdd = drives["/dev/sdb"]
    assert hdd["exit_status"] == 24 and hdd["smart_status"] == "failed"
    assert hdd["media"] == "hdd" and hdd["rotation_rate"] == 5400
    attrs = {a["id"]: a for a in hdd["attributes"]}
    assert attrs[1] == {"id": 1, "name": "Raw_Read_Error_Rate", "value": 38, "worst": 38,
                        "thresh": 51, "when_failed": "now", "prefailure": True, "raw": 31456}
    assert attrs[5]["raw"] == 1464 and attrs[197]["raw"] == 16
    assert describe_exit_status(24) == ["SMART status check returned DISK FAILING",
                                        "pre-fail attributes at or below threshold"]
    # The NVMe drive: its health log, read as documented
    nvme = drives["/dev/nvme0"]
    assert nvme["protocol"] == "NVMe" and nvme["smart_status"] == "failed"
    assert {k: nvme[k] for k in ("critical_warning", "available_spare",
                                 "available_spare_threshold", "percentage_used",
                                 "media_errors", "temperature_c", "power_on_hours",
                                 "capacity_bytes")} == {
        "critical_warning": 1, "available_spare": 4, "available_spare_threshold": 10,
        "percentage_used": 103, "media_errors": 12, "temperature_c": 44,
        "power_on_hours": 20411, "capacity_bytes": 1000204886016}
    assert "attributes" not in nvme


def test_a_drive_that_cannot_be_opened_is_unknown_with_smartctls_reason(tmp_path):
    fake = make_fake_smartctl(tmp_path)
    lost = by_device(read_drives(fake.path))["/dev/sdc"]
    assert lost["smart_status"] == "unknown" and lost["exit_status"] == 2
    assert lost["error"] == "Smartctl open device: /dev/sdc [SAT] failed: No such device"
    assert "attributes" not in lost and lost["model"] == "unknown"


def test_scan_open_errors_and_the_plain_scan_fallback(tmp_path):
    # Given a smartctl whose --scan-open names a device it could not open
    payloads = tmp_path / "payloads"
    payloads.mkdir()
    scan = json.loads((FLEET / "scan-open.json").read_text())
    scan["devices"] = [{**scan["devices"][0]},
                       {"name": "/dev/sdd", "info_name": "/dev/sdd", "type": "scsi",
                        "protocol": "SCSI", "open_error": "Permission denied"}]
    (payloads / "scan-open.json").write_text(json.dumps(scan))
    shutil.copy(FLEET / "sda.json", payloads / "sda.json")
    fake = make_fake_smartctl(tmp_path, payloads)
    drives = by_device(read_drives(fake.path))
    # Then that drive is reported unknown with the reason, and is not opened again
    assert drives["/dev/sdd"]["smart_status"] == "unknown"
    assert drives["/dev/sdd"]["error"] == "Permission denied"
    assert not any("/dev/sdd" in call for call in fake.calls())
    assert drives["/dev/sda"]["smart_status"] == "passed"

    # Given a smartctl that refuses --scan-open (exit bit 0): the plain --scan is used
    refusing = script(tmp_path / "refusing", f"""
case "$1" in
  --scan-open) echo '{{"smartctl": {{"exit_status": 1}}}}'; exit 1;;
  --scan) cat {FLEET / "scan-open.json"}; exit 0;;
  *) echo '{{"smartctl": {{"exit_status": 2}}}}'; exit 2;;
esac""")
    drives = read_drives(refusing)
    assert [d["device"] for d in drives] == ["/dev/sda", "/dev/sdb", "/dev/nvme0", "/dev/sdc"]
    assert all(d["smart_status"] == "unknown" for d in drives)
    assert drives[0]["error"] == "device could not be opened"


def test_smartctl_missing_or_too_old_means_no_section(tmp_path, monkeypatch):
    # Given no smartctl on PATH: the section is simply not collected
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert read_drives() is None
    assert "drives" not in Collector().inventory()
    # Given smartctl 6 (no -j: it prints its usage and exits 1): nothing usable either
    old = script(tmp_path / "old", 'echo "=======> UNRECOGNIZED OPTION: j"; exit 1')
    assert read_drives(old) is None


def test_a_hanging_drive_times_out_and_the_others_are_still_read(tmp_path):
    hanging = script(tmp_path / "hang", f"""
case "$1" in
  --scan-open) cat {FLEET / "scan-open.json"};;
  *) case "$*" in *sda*) cat {FLEET / "sda.json"};; *) exec sleep 30;; esac;;
esac""")
    drives = by_device(read_drives(hanging, device_timeout=0.5))
    assert drives["/dev/sda"]["smart_status"] == "passed"
    assert drives["/dev/sdb"]["smart_status"] == "unknown"
    assert drives["/dev/sdb"]["error"] == "smartctl timed out after 0.5 s"


@pytest.mark.parametrize("platform_name", ["linux", "win32", "darwin"])
def test_every_platform_collector_reports_drives_and_the_server_accepts_them(
        tmp_path, monkeypatch, platform_name):
    # Given the fake smartctl first on PATH
    monkeypatch.setenv("PATH", path_with(make_fake_smartctl(tmp_path)))
    # When a platform's collector reads its drives (smartctl is the same everywhere)
    drives = for_platform(platform_name).drives()
    # Then all four are there and the server's check-in validation accepts them as they are
    assert len(drives) == 4
    errors: list[str] = []
    validate_section("drives", drives, errors)
    assert errors == []


@pytest.mark.skipif(shutil.which("smartctl") is None, reason="smartmontools not installed")
def test_the_real_smartctl_runs_and_its_answer_is_valid():
    # The real smartctl on this machine: in a container it finds no drives; on a machine
    # with disks (as root) it reads them. Either way the result is a valid section.
    drives = read_drives()
    assert isinstance(drives, list)
    errors: list[str] = []
    validate_section("drives", drives, errors)
    assert errors == []
    for drive in drives:
        assert drive["smart_status"] in ("passed", "failed", "unknown")
        if drive["smart_status"] == "unknown":
            assert drive["error"]
