"""Reconciliation: devices with no agent, duplicates by serial and MAC, devices not seen for
N days, open conflicts and fields where sources disagree; scoped to the viewer's tenants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from watchkeeper.inventory import actions, selectors, services
from watchkeeper.inventory.models import Device, FieldConflict

pytestmark = pytest.mark.django_db


def agent_device(client, ref, **system):
    dev = services.register_agent_device(client_id=client.pk, site_id=None, hostname=ref,
                                         agent_ref=ref)
    services.apply_agent_inventory(device_id=dev.pk, agent_ref=ref, observed_at=timezone.now(),
                                   sections={"system": system} if system else {})
    return dev


def test_reconciliation_lists(owner, client_a):
    # given: a device with no agent, two agents reporting the same serial, two devices
    # sharing a MAC, one device silent for 40 days, and a manual value an agent disputes
    lone = Device.objects.create(client=client_a, name="spreadsheet-only")
    agent_device(client_a, "dup-1", serial="SAME")
    agent_device(client_a, "dup-2", serial="SAME")
    for ref in ("mac-1", "mac-2"):
        dev = agent_device(client_a, ref)
        services.apply_agent_inventory(
            device_id=dev.pk, agent_ref=ref, observed_at=timezone.now(),
            sections={"interfaces": [{"name": "eth0", "mac": "02:11:22:33:44:55",
                                      "ipv4": [], "ipv6": []}]})
    stale = agent_device(client_a, "stale")
    Device.objects.filter(pk=stale.pk).update(
        last_seen_at=timezone.now() - timedelta(days=40))
    disputed = agent_device(client_a, "disputed")
    actions.update_device(actor=owner, device=disputed, model="Typed")
    services.apply_agent_inventory(device_id=disputed.pk, agent_ref="disputed",
                                   observed_at=timezone.now(),
                                   sections={"system": {"model": "Reported"}})

    assert list(selectors.devices_without_agent(owner)) == [lone]
    groups = {(g["by"], g["value"]): {d.name for d in g["devices"]}
              for g in selectors.duplicates(owner)}
    assert groups == {("serial", "SAME"): {"dup-1", "dup-2"},
                      ("MAC", "02:11:22:33:44:55"): {"mac-1", "mac-2"}}
    assert [d.name for d in selectors.not_seen_since(owner, 30)] == ["stale"]
    assert selectors.not_seen_since(owner, 60).count() == 0
    conflict = selectors.open_conflicts(owner).get()
    assert (conflict.device_id, conflict.field) == (disputed.pk, "model")
    disagreeing = {(d["device"].pk, d["field"]) for d in selectors.disagreeing_fields(owner)}
    assert (disputed.pk, "model") in disagreeing


def test_reconcile_page_resolves_and_is_scoped(as_user, tech_a, owner, client_a, client_b):
    mine = agent_device(client_a, "mine")
    actions.update_device(actor=owner, device=mine, serial="TYPED")
    services.apply_agent_inventory(device_id=mine.pk, agent_ref="mine",
                                   observed_at=timezone.now(),
                                   sections={"system": {"serial": "REPORTED"}})
    Device.objects.create(client=client_b, name="other-tenant-orphan")
    web = as_user(tech_a)
    page = web.get(reverse("inventory_reconcile")).content.decode()
    assert "REPORTED" in page and "other-tenant-orphan" not in page
    conflict = FieldConflict.objects.get(device=mine)
    response = web.post(reverse("inventory_conflict_resolve", args=[conflict.pk]),
                        {"choice": "take", "next": "reconcile"})
    assert response.status_code == 302 and response.url == reverse("inventory_reconcile")
    mine.refresh_from_db()
    assert mine.serial == "REPORTED"
    # another tenant's conflict cannot be resolved
    theirs = agent_device(client_b, "theirs")
    actions.update_device(actor=owner, device=theirs, serial="T1")
    services.apply_agent_inventory(device_id=theirs.pk, agent_ref="theirs",
                                   observed_at=timezone.now(),
                                   sections={"system": {"serial": "T2"}})
    other = FieldConflict.objects.get(device=theirs)
    assert web.post(reverse("inventory_conflict_resolve", args=[other.pk]),
                    {"choice": "take"}).status_code == 404


def test_search_devices_for_the_global_search(tech_a, client_a, client_b):
    dev = agent_device(client_a, "searchable", serial="GLOBAL-SN-1")
    services.apply_agent_inventory(
        device_id=dev.pk, agent_ref="searchable", observed_at=timezone.now(),
        sections={"interfaces": [{"name": "eth0", "mac": "02:de:ad:be:ef:01",
                                  "ipv4": ["203.0.113.5"], "ipv6": []}]})
    Device.objects.create(client=client_b, name="hidden", serial="GLOBAL-SN-2")
    for text in ("GLOBAL-SN", "203.0.113.5", "02:DE:AD:BE:EF:01"):
        found = selectors.search_devices(tech_a, text)
        assert [r["name"] for r in found] == ["searchable"], text
    assert selectors.search_devices(tech_a, "x") == []
