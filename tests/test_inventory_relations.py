"""Device relations in the inventory (inventory/relations/): provenance, manual relations
winning over observed ones, conflicts shown and never overwritten, the API, dependency
suppression reading them, and the migration that moved the table out of monitoring."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.core.models import AuditEntry, Event, Site
from watchkeeper.inventory.relations import actions, selectors
from watchkeeper.inventory.relations.choices import RelationKind, RelationSource
from watchkeeper.inventory.relations.models import DeviceRelation
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.choices import State, Suppression
from watchkeeper.monitoring.models import Alert

pytestmark = pytest.mark.django_db


@pytest.fixture
def lan(client_a):
    site = Site.objects.create(client=client_a, name="Head office")
    return {"site": site, "router": make_device(client_a, "rtr-01", site=site),
            "router2": make_device(client_a, "rtr-02", site=site),
            "switch": make_device(client_a, "sw-01", site=site),
            "pc": make_device(client_a, "pc-01", site=site)}


def test_observed_relations_follow_their_source_and_leave_others_alone(owner, lan):
    manual = actions.add_relation(actor=owner, kind=RelationKind.UPLINK, parent=lan["switch"],
                                  device=lan["pc"])
    # When the agent reports the PC's gateway, then reports another one
    first = actions.record_observed(device=lan["pc"], kind=RelationKind.GATEWAY,
                                    source=RelationSource.AGENT,
                                    parents=[(lan["router"], "default gateway 10.0.0.1")])
    again = actions.record_observed(device=lan["pc"], kind=RelationKind.GATEWAY,
                                    source=RelationSource.AGENT,
                                    parents=[(lan["router"], "default gateway 10.0.0.1")])
    moved = actions.record_observed(device=lan["pc"], kind=RelationKind.GATEWAY,
                                    source=RelationSource.AGENT,
                                    parents=[(lan["router2"], "default gateway 10.0.0.2")])
    # Then only the agent's own row followed, with an audit trail and one event per change
    assert first == {"added": 1, "removed": 0} and again == {"added": 0, "removed": 0}
    assert moved == {"added": 1, "removed": 1}
    agent_rows = DeviceRelation.objects.filter(source=RelationSource.AGENT)
    assert [(r.parent_id, r.detail) for r in agent_rows] == [
        (lan["router2"].pk, "default gateway 10.0.0.2")]
    assert agent_rows.get().seen_at is not None
    assert DeviceRelation.objects.filter(pk=manual.pk).exists()
    assert Event.objects.filter(kind="devicerelation.observed").count() == 2
    assert AuditEntry.objects.filter(object_type="inventory.devicerelation").count() == 4


def test_a_manual_relation_wins_and_a_disagreement_is_a_visible_conflict(owner, lan):
    actions.record_observed(device=lan["pc"], kind=RelationKind.GATEWAY,
                            source=RelationSource.AGENT, parents=[(lan["router"], "gw")])
    assert selectors.parent_device_ids(lan["pc"].pk) == [lan["router"].pk]
    # When a person says the PC's gateway is the other router
    actions.add_relation(actor=owner, kind=RelationKind.GATEWAY, parent=lan["router2"],
                         device=lan["pc"])
    # Then the manual one counts, the observed one is kept, and the two are a conflict
    assert selectors.parent_device_ids(lan["pc"].pk) == [lan["router2"].pk]
    assert DeviceRelation.objects.filter(device=lan["pc"]).count() == 2
    view = selectors.for_device(lan["pc"], owner)
    assert [(g.kind, g.conflict, len(g.rows)) for g in view["up"]] == [("gateway", True, 2)]
    assert selectors.conflicts(owner) == [{
        "device_id": lan["pc"].pk, "kind": "gateway",
        "parents": {"agent": [lan["router"].pk], "manual": [lan["router2"].pk]}}]
    # And an observation that agrees is no conflict
    actions.record_observed(device=lan["pc"], kind=RelationKind.GATEWAY,
                            source=RelationSource.AGENT, parents=[(lan["router2"], "gw")])
    assert selectors.conflicts(owner) == []


def test_bad_relations_are_refused(owner, lan, client_b):
    other = make_device(client_b, "elsewhere")
    for kwargs, field in (({"parent": other, "device": lan["pc"]}, "parent"),
                          ({"parent": lan["pc"], "device": lan["pc"]}, "parent"),
                          ({"parent": lan["router"]}, "device")):
        with pytest.raises(Exception) as exc:
            actions.add_relation(actor=owner, kind=RelationKind.DEPENDS, **kwargs)
        assert field in exc.value.message_dict
    assert not DeviceRelation.objects.exists()


def test_a_gateway_seen_by_the_agent_suppresses_the_alerts_behind_it(owner, client_a, lan):
    _, check = disk_policy(owner)
    actions.record_observed(device=lan["pc"], kind=RelationKind.GATEWAY,
                            source=RelationSource.AGENT, parents=[(lan["router"], "gw")])
    record_results([CheckResult(check.pk, lan["router"].pk, client_a.pk, State.CRITICAL)])
    record_results([CheckResult(check.pk, lan["pc"].pk, client_a.pk, State.CRITICAL)])
    parent = Alert.objects.get(device=lan["router"])
    child = Alert.objects.get(device=lan["pc"])
    assert child.parent_id == parent.pk and child.suppressed == Suppression.DEPENDENCY
    # Not so for a device with no relation
    record_results([CheckResult(check.pk, lan["switch"].pk, client_a.pk, State.CRITICAL)])
    assert Alert.objects.get(device=lan["switch"]).parent_id is None


def test_api_adds_lists_and_deletes_manual_relations(as_user, owner, lan):
    http = as_user(owner)
    url = "/api/v1/device-relations/"
    created = http.post(url, {"kind": "power", "parent": lan["switch"].pk,
                              "device": lan["pc"].pk}, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["source"] == "manual"
    actions.record_observed(device=lan["pc"], kind=RelationKind.GATEWAY,
                            source=RelationSource.AGENT, parents=[(lan["router"], "gw")])
    listed = http.get(url, {"device": lan["pc"].pk}).json()["results"]
    assert sorted((r["kind"], r["source"]) for r in listed) == [("gateway", "agent"),
                                                                 ("power", "manual")]
    # The old monitoring path answers the same rows
    assert len(http.get("/api/v1/monitoring/dependencies/").json()["results"]) == 2
    observed = next(r for r in listed if r["source"] == "agent")
    assert http.delete(f"{url}{observed['id']}/").status_code == 409
    assert http.delete(f"{url}{created.json()['id']}/").status_code == 204
    assert list(DeviceRelation.objects.values_list("source", flat=True)) == ["agent"]
    bad = http.post(url, {"kind": "uplink", "parent": lan["pc"].pk, "device": lan["pc"].pk},
                    content_type="application/json")
    assert bad.status_code == 400


def test_device_page_shows_relations_with_their_source_and_conflicts(as_user, owner, lan):
    actions.record_observed(device=lan["pc"], kind=RelationKind.GATEWAY,
                            source=RelationSource.AGENT,
                            parents=[(lan["router"], "default gateway 10.0.0.1")])
    actions.add_relation(actor=owner, kind=RelationKind.GATEWAY, parent=lan["router2"],
                         device=lan["pc"])
    page = as_user(owner).get(reverse("device_tab", args=[lan["pc"].pk, "relations"]))
    body = page.content.decode()
    assert page.status_code == 200
    assert "rtr-01" in body and "rtr-02" in body and "default gateway 10.0.0.1" in body
    assert "Agent" in body and "Manual" in body and "Sources disagree" in body
    # Adding a manual relation through the page
    response = as_user(owner).post(reverse("device_relation_add", args=[lan["pc"].pk]),
                                   {"kind": "power", "parent": lan["switch"].pk})
    assert response.status_code == 302
    assert DeviceRelation.objects.filter(kind="power", device=lan["pc"],
                                         source="manual").exists()


@pytest.mark.django_db(transaction=True)
def test_relations_survive_the_move_from_a_database_at_the_previous_head(client_a):
    """A database migrated to the head before the move (monitoring 0007, inventory 0002),
    with relations in it, keeps every relation after migrating: same ids, now manual."""
    before = [("inventory", "0002_asset_tag_currency_import_decisions"),
              ("monitoring", "0007_ingest")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    OldRelation = old.get_model("monitoring", "DeviceRelation")
    OldDevice = old.get_model("inventory", "Device")
    OldSite = old.get_model("core", "Site")
    router = OldDevice.objects.create(client_id=client_a.pk, name="rtr")
    pc = OldDevice.objects.create(client_id=client_a.pk, name="pc")
    site = OldSite.objects.create(client_id=client_a.pk, name="Office")
    rows = [OldRelation.objects.create(client_id=client_a.pk, kind="gateway", parent=router,
                                       device=pc),
            OldRelation.objects.create(client_id=client_a.pk, kind="uplink", parent=router,
                                       site=site)]
    # When the database is migrated to the current head
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    # Then the rows are the inventory's, unchanged, with provenance "manual"
    moved = list(DeviceRelation.objects.order_by("id").values_list(
        "id", "kind", "parent_id", "device_id", "site_id", "source"))
    assert moved == [(rows[0].pk, "gateway", router.pk, pc.pk, None, "manual"),
                     (rows[1].pk, "uplink", router.pk, None, site.pk, "manual")]
    tables = connection.introspection.table_names()
    assert "inventory_devicerelation" in tables and "monitoring_devicerelation" not in tables
    assert selectors.parent_device_ids(pc.pk) == [router.pk]


def test_the_agents_default_gateway_becomes_an_observed_relation(owner, client_a, lan,
                                                                 tmp_path):
    from django.utils import timezone
    from watchkeeper_agent.collectors.linux import parse_proc_route

    from watchkeeper.inventory import services

    # The agent reads its kernel's routes (little-endian hex, as in /proc/net/route)
    route = tmp_path / "route"
    route.write_text("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
                     "eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\n"
                     "eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\n")
    assert parse_proc_route(str(route)) == {"eth0": "10.0.0.1"}
    assert parse_proc_route(str(tmp_path / "missing")) is None
    # The router is known by its address; the PC reports its interfaces with the gateway
    services.apply_agent_inventory(
        device_id=lan["router"].pk, agent_ref="a1", observed_at=timezone.now(),
        sections={"interfaces": [{"name": "lan", "mac": "", "ipv4": ["10.0.0.1"]}]})
    services.apply_agent_inventory(
        device_id=lan["pc"].pk, agent_ref="a2", observed_at=timezone.now(),
        sections={"interfaces": [{"name": "eth0", "mac": "", "ipv4": ["10.0.0.23"],
                                  "gateway": "10.0.0.1"}]})
    row = DeviceRelation.objects.get(device=lan["pc"])
    assert (row.kind, row.parent_id, row.source, row.detail) == (
        "gateway", lan["router"].pk, "agent", "default gateway 10.0.0.1")
    assert selectors.parent_device_ids(lan["pc"].pk) == [lan["router"].pk]
    # An agent that no longer has a gateway drops its own relation; an old agent that
    # sends no gateway at all leaves it alone
    services.apply_agent_inventory(
        device_id=lan["pc"].pk, agent_ref="a2", observed_at=timezone.now(),
        sections={"interfaces": [{"name": "eth0", "mac": "", "ipv4": ["10.0.0.24"]}]})
    assert DeviceRelation.objects.filter(device=lan["pc"]).count() == 1
    services.apply_agent_inventory(
        device_id=lan["pc"].pk, agent_ref="a2", observed_at=timezone.now(),
        sections={"interfaces": [{"name": "eth0", "mac": "", "ipv4": ["10.0.0.23"],
                                  "gateway": ""}]})
    assert not DeviceRelation.objects.filter(device=lan["pc"]).exists()


NEIGHBOURS = (
    # LLDP remote system name, LLDP management address (IPv4 10.9.8.7), CDP device id
    'override 1.0.8802.1.1.2.1.4.1.1.9.0.3.1 octet_str "pc-lldp.example.lan"\n'
    "override 1.0.8802.1.1.2.1.4.2.1.3.0.4.1.1.4.10.9.8.7 integer 2\n"
    'override 1.3.6.1.4.1.9.9.23.1.2.1.1.6.5.1 octet_str "rtr-cdp"\n')


@pytest.fixture
def neighbour_snmpd(tmp_path, loopback_probes):
    from tests.test_inventory_discovery import start_snmpd

    yield from start_snmpd(tmp_path, NEIGHBOURS)


def test_lldp_and_cdp_neighbours_become_uplinks_seen_by_discovery(owner, client_a,
                                                                   neighbour_snmpd):
    from watchkeeper.inventory.discovery import engine as discovery
    from watchkeeper.inventory.models import NetworkAddress

    switch = make_device(client_a, "sw-lab", kind="network", primary_ip="127.0.0.1")
    by_name = make_device(client_a, "pc-lldp", kind="workstation")
    by_address = make_device(client_a, "printer-2", kind="printer")
    NetworkAddress.objects.create(device=by_address, interface="eth0", address="10.9.8.7")
    router = make_device(client_a, "rtr-cdp", kind="network")  # switch to router: no direction
    run = discovery.start_discovery(actor=owner, client=client_a, subnet="127.0.0.1/32",
                                    ports=[1], snmp_community="wk-test-community",
                                    snmp_port=neighbour_snmpd)
    discovery.run_discovery.call(run.pk)
    rows = DeviceRelation.objects.order_by("device__name")
    assert [(r.device.name, r.kind, r.parent_id, r.source) for r in rows] == [
        ("pc-lldp", "uplink", switch.pk, "discovery"),
        ("printer-2", "uplink", switch.pk, "discovery")]
    assert "sw-lab" in rows[0].detail
    assert not DeviceRelation.objects.filter(device=router).exists()
    assert selectors.parent_device_ids(by_name.pk) == [switch.pk]
