"""The agent's update scan against a real local APT repository (tests/aptrepo.py): apt-get,
apt-cache and the repository are real; only the apt configuration is throwaway.

The other platforms' parsers are driven with their documented output (their tools are not on
this machine); that proves the parsing, not the tools (docs/patching.md)."""

from __future__ import annotations

import json

import pytest
from watchkeeper_agent.collectors import updates
from watchkeeper_agent.collectors.base import run
from watchkeeper_agent.collectors.linux import LinuxCollector

from tests import aptrepo

pytestmark = pytest.mark.skipif(not aptrepo.available(), reason="dpkg-deb/apt-ftparchive")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = aptrepo.AptWorld(tmp_path_factory.mktemp("apt"))
    w.suite("stable", codename="bookworm")
    w.suite("stable-security", label="Debian-Security", codename="bookworm-security")
    w.suite("stable-updates", codename="bookworm-updates")
    w.suite("stable-backports", codename="bookworm-backports")
    w.suite("vendor", origin="Example Corp", label="Example")
    for suite, package, version in (
            ("stable", "wkdemo", "1.0"), ("stable-security", "wkdemo", "2.0"),
            ("stable", "wkfix", "1.0"), ("stable-updates", "wkfix", "1.1"),
            ("stable", "wknew", "1.0"), ("stable-backports", "wknew", "3.0"),
            ("vendor", "wkvendor", "1.0"), ("vendor", "wkvendor", "1.5"),
            ("stable", "linux-image-wk", "6.1"), ("stable-security", "linux-image-wk", "6.2"),
            ("stable", "wkcurrent", "1.0")):
        w.publish(suite, package, version)
    for package, version in (("wkdemo", "1.0"), ("wkfix", "1.0"), ("wknew", "1.0"),
                             ("wkvendor", "1.0"), ("linux-image-wk", "6.1"),
                             ("wkcurrent", "1.0")):
        w.mark_installed(package, version)
    # backports are not candidates unless pinned up (as on Debian): pin ours to 500
    (w.state / "etc/apt/preferences.d/backports").write_text(
        "Package: *\nPin: release a=stable-backports\nPin-Priority: 500\n")
    w.update()
    return w


@pytest.fixture
def scan(world, monkeypatch, tmp_path):
    monkeypatch.setenv("APT_CONFIG", str(world.config))
    flag = tmp_path / "reboot-required"
    monkeypatch.setattr(updates, "REBOOT_FLAG", str(flag))

    def do(**kw):
        return {i["name"]: i for i in updates.apt_updates(run, os_id="debian",
                                                          flag=str(flag), **kw)}
    do.flag = flag
    return do


def test_security_update_from_a_security_suite(scan):
    found = scan()
    demo = found["wkdemo"]
    assert (demo["installed_version"], demo["version"]) == ("1.0", "2.0")
    assert demo["classification"] == "security"
    assert (demo["source"], demo["origin"], demo["label"], demo["archive"]) == (
        "os", "Debian", "Debian-Security", "stable-security")
    assert demo["site"] == "local"
    assert isinstance(demo["size"], int) and demo["size"] > 500
    assert demo["reboot"] is False
    assert "wkcurrent" not in found  # installed and current: not an update


def test_classification_rule(scan):
    found = scan()
    assert found["wkfix"]["classification"] == "bugfix"
    assert found["wknew"]["classification"] == "feature"
    assert (found["wkvendor"]["classification"], found["wkvendor"]["source"],
            found["wkvendor"]["origin"]) == ("other", "third_party", "Example Corp")
    kernel = found["linux-image-wk"]
    assert (kernel["classification"], kernel["reboot"]) == ("security", True)
    assert sorted(found) == ["linux-image-wk", "wkdemo", "wkfix", "wknew", "wkvendor"]


def test_reboot_required_pkgs_marks_the_package(scan):
    scan.flag.with_name("reboot-required.pkgs").write_text("wkfix\n")
    scan.flag.write_text("*** System restart required ***\n")
    assert scan()["wkfix"]["reboot"] is True
    assert updates.reboot_flag(str(scan.flag)) == (True, {"wkfix"})


def test_linux_collector_reports_the_scan_in_the_inventory_shape(world, monkeypatch):
    monkeypatch.setenv("APT_CONFIG", str(world.config))
    items = LinuxCollector().updates()
    assert {i["name"] for i in items} >= {"wkdemo", "wkvendor"}
    assert json.loads(json.dumps(items)) == items  # plain JSON, as the inventory sends it


def test_no_apt_is_none_and_nothing_upgradable_is_empty(scan, world, monkeypatch):
    assert updates.apt_updates(lambda argv: None) is None
    assert updates.apt_updates(lambda argv: "Reading package lists...\n") == []


def test_classify_ubuntu_and_third_party_security():
    assert updates.classify([{"o": "Ubuntu", "a": "jammy-security", "n": "jammy"}]) == (
        "security", "os")
    assert updates.classify([{"o": "Ubuntu", "a": "jammy-updates"}]) == ("bugfix", "os")
    assert updates.classify([{"o": "Docker", "a": "stable"}]) == ("other", "third_party")
    assert updates.classify([{"o": "Wazuh", "a": "stable-security"}]) == (
        "security", "third_party")


# --- platforms not present here: their documented output, parsed -------------------------
def test_dnf_updateinfo_parsing():
    outputs = {
        "repoquery": "openssl-libs\t1:3.0.7-27.el9\tx86_64\tbaseos\t2251234\n"
                     "kernel\t5.14.0-427.el9\tx86_64\tbaseos\t6000000\n"
                     "code\t1.90.0-1\tx86_64\tvscode\t100\n",
        "updateinfo": "RHSA-2024:1234 Important/Sec. openssl-libs-1:3.0.7-27.el9.x86_64\n"
                      "RHBA-2024:2000 bugfix kernel-5.14.0-427.el9.x86_64\n",
    }
    items = {i["name"]: i for i in updates.dnf_updates(
        lambda argv: outputs["repoquery" if "repoquery" in argv else "updateinfo"])}
    assert (items["openssl-libs"]["classification"], items["openssl-libs"]["severity"],
            items["openssl-libs"]["references"]) == ("security", "important",
                                                      ["RHSA-2024:1234"])
    assert (items["kernel"]["classification"], items["kernel"]["reboot"]) == ("bugfix", True)
    assert (items["code"]["classification"], items["code"]["source"]) == (
        "other", "third_party")


def test_windows_winget_choco_macos_parsing():
    wu = json.dumps([{"title": "2024-05 Cumulative Update", "kb": "5037771",
                      "severity": "Critical", "categories": "Security Updates",
                      "size": 1000, "reboot": True, "cves": "CVE-2024-1"}])
    [item] = updates.windows_updates(lambda argv: wu)
    assert (item["name"], item["classification"], item["severity"], item["references"],
            item["reboot"]) == ("KB5037771", "security", "critical", ["CVE-2024-1"], True)
    winget = ("Name      Id              Version Available Source\n"
              "-----------------------------------------------------\n"
              "7-Zip     7zip.7zip       23.01   24.05     winget\n")
    [app] = updates.winget_updates(lambda argv: winget)
    assert (app["name"], app["installed_version"], app["version"], app["source"]) == (
        "7zip.7zip", "23.01", "24.05", "application")
    [choco] = updates.choco_updates(lambda argv: "git|2.40.0|2.45.1|false\n")
    assert (choco["name"], choco["version"], choco["origin"]) == ("git", "2.45.1",
                                                                  "chocolatey")
    mac = ("Software Update found the following new or updated software:\n"
           "* Label: macOS Sonoma 14.5-23F79\n"
           "\tTitle: macOS Sonoma 14.5, Version: 14.5, Size: 786432K, "
           "Recommended: YES, Action: restart,\n")
    [m] = updates.macos_updates(lambda argv: mac)
    assert (m["name"], m["version"], m["size"], m["reboot"]) == (
        "macOS Sonoma 14.5-23F79", "14.5", 786432 * 1024, True)
