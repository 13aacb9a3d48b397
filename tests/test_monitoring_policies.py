"""Policies: assignment at every level, inheritance, per-level overrides, effective checks
with their origin, versions with references, and the what-if replay over stored metrics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.monitoring_helpers import make_device
from watchkeeper.agents.checkin.writer import insert_samples
from watchkeeper.core.models import Site
from watchkeeper.monitoring import actions
from watchkeeper.monitoring.choices import CheckKind, Scope
from watchkeeper.monitoring.models import Alert, PolicyVersion
from watchkeeper.monitoring.policies import effective_checks_for, what_if

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner, client_a, client_b):
    site = Site.objects.create(client=client_a, name="HQ")
    web = make_device(client_a, "web-01", site=site)
    db = make_device(client_a, "db-01", site=site)
    other = make_device(client_b, "b-01")
    group = actions.create_group(actor=owner, client=client_a, name="Databases",
                                 devices=[db])
    base = actions.create_policy(actor=owner, name="Baseline")
    disk = actions.add_check(actor=owner, policy=base, name="Disk", kind=CheckKind.DISK,
                             config={"warning": 80, "critical": 90})
    cpu = actions.add_check(actor=owner, policy=base, name="CPU", kind=CheckKind.CPU,
                            config={"warning": 90})
    actions.assign_policy(actor=owner, policy=base, scope=Scope.GLOBAL)
    dbpol = actions.create_policy(actor=owner, name="DB servers", client=client_a)
    dbdisk = actions.add_check(actor=owner, policy=dbpol, name="Disk", kind=CheckKind.DISK,
                               config={"warning": 70, "critical": 80})
    svc = actions.add_check(actor=owner, policy=dbpol, name="postgres",
                            kind=CheckKind.SERVICE, config={"service": "postgresql"})
    actions.assign_policy(actor=owner, policy=dbpol, scope=Scope.GROUP, target=group)
    return {"site": site, "web": web, "db": db, "other": other, "group": group,
            "base": base, "disk": disk, "cpu": cpu, "dbpol": dbpol, "dbdisk": dbdisk,
            "svc": svc}


def _by_name(device):
    return {c["name"]: c for c in effective_checks_for([device.pk])[device.pk]}


def test_global_policy_reaches_every_device_with_its_origin(world):
    web = _by_name(world["web"])
    assert set(web) == {"Disk", "CPU"}
    assert web["Disk"]["id"] == world["disk"].pk
    assert web["Disk"]["origin"] == "Baseline (global)"
    assert set(_by_name(world["other"])) == {"Disk", "CPU"}


def test_a_more_specific_level_replaces_a_check_of_the_same_name(world):
    db = _by_name(world["db"])
    assert set(db) == {"Disk", "CPU", "postgres"}
    assert db["Disk"]["id"] == world["dbdisk"].pk
    assert db["Disk"]["replaces"] == "Baseline (global)"
    assert db["Disk"]["origin"].startswith("DB servers (group")


def test_overrides_disable_or_change_a_check_at_one_level(owner, world):
    # The site turns CPU off; the web device alone turns it back on with another threshold
    actions.set_override(actor=owner, check=world["cpu"], scope=Scope.SITE,
                         target=world["site"], is_enabled=False)
    actions.set_override(actor=owner, check=world["cpu"], scope=Scope.DEVICE,
                         target=world["web"], is_enabled=True, config={"warning": 75})
    web, db = _by_name(world["web"]), _by_name(world["db"])
    assert "CPU" not in db
    assert web["CPU"]["config"]["warning"] == 75
    assert web["CPU"]["overrides"] == [f"site #{world['site'].pk}",
                                       f"device #{world['web'].pk}"]
    # Another client's device is untouched
    assert "CPU" in _by_name(world["other"])


def test_a_disabled_policy_contributes_nothing(owner, world):
    actions.update_policy(actor=owner, policy=world["base"], is_enabled=False)
    assert set(_by_name(world["web"])) == set()


def test_a_client_policy_cannot_be_assigned_to_another_client(owner, world):
    with pytest.raises(actions.ActionError):
        actions.assign_policy(actor=owner, policy=world["dbpol"], scope=Scope.DEVICE,
                              target=world["other"])


def test_every_change_is_a_version_with_its_references(owner, world):
    versions = PolicyVersion.objects.filter(policy=world["dbpol"]).order_by("version")
    # created (1), Disk added (2), postgres added (3)
    assert list(versions.values_list("version", flat=True)) == [1, 2, 3]
    latest = versions.last()
    assert "service:postgresql" in latest.references
    assert [c["name"] for c in latest.snapshot["checks"]] == ["Disk", "postgres"]
    # the first version referenced nothing yet
    assert versions.first().references == []
    # an edit that changes nothing is no new version
    actions.update_policy(actor=owner, policy=world["dbpol"], name="DB servers")
    assert PolicyVersion.objects.filter(policy=world["dbpol"]).count() == 3


def test_what_if_counts_the_alerts_a_draft_would_have_raised(owner, client_a, world):
    # Given a week of stored metrics: web-01 crossed 85 % disk twice, db-01 never
    now = timezone.now()
    start = now - timedelta(days=6)
    for hour in range(0, 6 * 24, 2):
        at = start + timedelta(hours=hour)
        spike = 40 <= hour < 44 or 100 <= hour < 106
        insert_samples(world["web"].pk, at, {"disk.used_percent:/": 90.0 if spike else 60.0})
        insert_samples(world["db"].pk, at, {"disk.used_percent:/": 50.0})
    # And a draft policy, not enabled, assigned to the site
    draft = actions.create_policy(actor=owner, name="Strict disks", client=client_a,
                                  is_enabled=False)
    actions.add_check(actor=owner, policy=draft, name="Disk strict", kind=CheckKind.DISK,
                      config={"warning": 85, "critical": 95}, fail_after=2)
    actions.assign_policy(actor=owner, policy=draft, scope=Scope.SITE, target=world["site"])
    # When it is replayed over the last 7 days
    result = what_if(draft, days=7, now=now)
    # Then it would have raised two alerts, both on web-01
    assert result["alerts"] == 2
    assert result["devices_evaluated"] == 2
    assert [(r["device"], r["alerts"]) for r in result["devices"]] == [("web-01", 2)]
    # And nothing live was written
    assert not Alert.objects.exists()
    # With three readings in a row needed, only the longer spike (three samples) counts
    check = draft.checks.get()
    actions.update_check(actor=owner, check=check, fail_after=3)
    assert what_if(draft, days=7, now=now)["alerts"] == 1
