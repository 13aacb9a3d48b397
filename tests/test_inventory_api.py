"""Inventory REST API: devices CRUD with filters, history, provenance, conflicts, licences,
imports (upload, mapping + preview, apply), reconciliation, discovery; tenancy and roles."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from watchkeeper.core.models import AuditEntry, Event, Site
from watchkeeper.inventory import actions, services
from watchkeeper.inventory.models import Device, DiscoveredHost, DiscoveryRun

pytestmark = pytest.mark.django_db
API = "/api/v1"


def test_device_crud_with_audit_events_and_history(as_user, tech_a, client_a):
    api = as_user(tech_a)
    site = Site.objects.create(client=client_a, name="HQ")
    response = api.post(f"{API}/devices/", {"client": client_a.pk, "site": site.pk,
                                           "name": "fw-1", "kind": "network",
                                           "serial": "FW1"}, content_type="application/json")
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert Event.objects.filter(kind="device.created", payload__id=pk).exists()
    response = api.patch(f"{API}/devices/{pk}/", {"location": "Rack 2"},
                         content_type="application/json")
    assert response.status_code == 200 and response.json()["location"] == "Rack 2"
    assert AuditEntry.objects.filter(object_type="inventory.device", object_id=str(pk),
                                     action="update").exists()
    history = api.get(f"{API}/devices/{pk}/history/").json()["results"]
    assert any(h["subject"] == "location" and h["after"] == "Rack 2" for h in history)
    provenance = api.get(f"{API}/devices/{pk}/provenance/").json()
    assert {"field": "location", "source_kind": "manual"}.items() <= next(
        p for p in provenance if p["field"] == "location").items()
    assert api.delete(f"{API}/devices/{pk}/").status_code == 204
    assert not Device.objects.filter(pk=pk).exists()


def test_device_list_filters_and_search(as_user, owner, client_a, client_b):
    dev = services.register_agent_device(client_id=client_a.pk, site_id=None,
                                         hostname="agent-box", agent_ref="r")
    services.apply_agent_inventory(
        device_id=dev.pk, agent_ref="r", observed_at=timezone.now(),
        sections={"interfaces": [{"name": "e0", "mac": "02:aa:bb:cc:dd:ee",
                                  "ipv4": ["172.16.0.9"], "ipv6": []}],
                  "software": [{"name": "nginx", "version": "1.22", "source": "dpkg"}]})
    Device.objects.create(client=client_b, name="b-printer", kind="printer")
    api = as_user(owner)
    names = [d["name"] for d in api.get(f"{API}/devices/", {"q": "172.16.0.9"})
             .json()["results"]]
    assert names == ["agent-box"]
    names = [d["name"] for d in api.get(f"{API}/devices/", {"kind": "printer"})
             .json()["results"]]
    assert names == ["b-printer"]
    assert api.get(f"{API}/devices/", {"client": client_a.pk}).json()["count"] == 1
    software = api.get(f"{API}/devices/{dev.pk}/software/").json()["results"]
    assert software[0]["name"] == "nginx"
    inventory = api.get(f"{API}/devices/{dev.pk}/inventory/").json()
    assert inventory["interfaces"]["data"][0]["mac"] == "02:aa:bb:cc:dd:ee"


def test_tenancy_and_roles(as_user, tech_a, portal_b, owner, client_a, client_b):
    theirs = Device.objects.create(client=client_b, name="theirs")
    api = as_user(tech_a)
    assert api.get(f"{API}/devices/{theirs.pk}/").status_code == 404
    assert api.patch(f"{API}/devices/{theirs.pk}/", {"name": "x"},
                     content_type="application/json").status_code == 404
    # a technician cannot create a device for a client they are not assigned to
    response = api.post(f"{API}/devices/", {"client": client_b.pk, "name": "sneaky"},
                        content_type="application/json")
    assert response.status_code == 400 and not Device.objects.filter(name="sneaky").exists()
    assert as_user(portal_b).get(f"{API}/devices/").status_code == 403


def test_conflict_resolution_over_the_api(as_user, owner, client_a):
    dev = services.register_agent_device(client_id=client_a.pk, site_id=None,
                                         hostname="c", agent_ref="c")
    actions.update_device(actor=owner, device=dev, serial="MINE")
    services.apply_agent_inventory(device_id=dev.pk, agent_ref="c", observed_at=timezone.now(),
                                   sections={"system": {"serial": "THEIRS"}})
    api = as_user(owner)
    conflicts = api.get(f"{API}/device-conflicts/", {"status": "open"}).json()["results"]
    assert [(c["field"], c["proposed_value"]) for c in conflicts] == [("serial", "THEIRS")]
    cid = conflicts[0]["id"]
    assert api.post(f"{API}/device-conflicts/{cid}/resolve/", {"choice": "maybe"},
                    content_type="application/json").status_code == 400
    response = api.post(f"{API}/device-conflicts/{cid}/resolve/", {"choice": "take"},
                        content_type="application/json")
    assert response.status_code == 200 and response.json()["status"] == "taken"
    dev.refresh_from_db()
    assert dev.serial == "THEIRS"
    assert api.post(f"{API}/device-conflicts/{cid}/resolve/", {"choice": "keep"},
                    content_type="application/json").status_code == 400


def test_licence_key_is_write_only(as_user, owner, client_a):
    api = as_user(owner)
    response = api.post(f"{API}/licences/", {"client": client_a.pk, "product": "AV",
                                            "match": "antivirus", "seats": 5,
                                            "key": "SECRET-KEY"},
                        content_type="application/json")
    assert response.status_code == 201
    body = response.json()
    assert "key" not in body and body["has_key"] is True and body["seats_used"] == 0
    assert "SECRET-KEY" not in api.get(f"{API}/licences/").content.decode()


def test_import_over_the_api(as_user, owner, client_a):
    api = as_user(owner)
    upload = SimpleUploadedFile("api.csv", b"Device,Serial No,Bought\nx1,S-X1,12/03/2024\n"
                                           b"x2,S-X2,someday\n")
    response = api.post(f"{API}/device-imports/", {"client": client_a.pk, "file": upload})
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["mapping"] == {"Device": "name", "Serial No": "serial",
                              "Bought": "purchase_date"}
    response = api.post(f"{API}/device-imports/{run['id']}/mapping/",
                        {"mapping": run["mapping"], "date_order": "dmy"},
                        content_type="application/json")
    report = response.json()["report"]
    assert report["counts"]["create"] == 1
    assert report["errors"] == [{"line": 3, "reason": "purchase_date: 'someday' is not a date"}]
    response = api.post(f"{API}/device-imports/{run['id']}/apply/", {},
                        content_type="application/json")
    assert response.status_code == 200 and response.json()["status"] == "applied"
    assert Device.objects.get(serial="S-X1").purchase_date.isoformat() == "2024-03-12"
    # applying twice is refused
    assert api.post(f"{API}/device-imports/{run['id']}/apply/", {},
                    content_type="application/json").status_code == 400


def test_reconciliation_and_discovery_api(as_user, owner, client_a):
    Device.objects.create(client=client_a, name="no-agent")
    api = as_user(owner)
    body = api.get(f"{API}/reconciliation/").json()
    assert [d["name"] for d in body["devices_without_agent"]] == ["no-agent"]
    assert api.post(f"{API}/discoveries/", {"client": client_a.pk, "subnet": "10.0.0.0/16"},
                    content_type="application/json").status_code == 400
    response = api.post(f"{API}/discoveries/", {"client": client_a.pk,
                                               "subnet": "192.0.2.0/28", "ports": [80]},
                        content_type="application/json")
    assert response.status_code == 201
    run = DiscoveryRun.objects.get(pk=response.json()["id"])
    host = DiscoveredHost.objects.create(run=run, address="192.0.2.3", alive=True)
    response = api.post(f"{API}/discoveries/{run.pk}/hosts/{host.pk}/accept/",
                        {"kind": "server", "name": "found-1"}, content_type="application/json")
    assert response.status_code == 201 and response.json()["source"] == "network_scan"


def test_api_device_list_query_count_is_bounded(as_user, owner, client_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Device.objects.bulk_create([Device(client=client_a, name=f"d{i:04d}") for i in range(300)])
    api = as_user(owner)
    with CaptureQueriesContext(connection) as ctx:
        response = api.get(f"{API}/devices/", {"page_size": 200})
    assert response.status_code == 200 and len(response.json()["results"]) == 200
    assert len(ctx.captured_queries) <= 8, [q["sql"][:100] for q in ctx.captured_queries]
