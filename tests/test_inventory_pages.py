"""Device list and device page: filters, search, paging, bounded query count, tabs, manual
edit with provenance, conflict decisions, licences, tenant isolation."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from watchkeeper.core.models import Site
from watchkeeper.inventory import actions, services
from watchkeeper.inventory.choices import ConflictStatus, SourceKind
from watchkeeper.inventory.models import Device, FieldConflict, FieldProvenance, SavedView

pytestmark = pytest.mark.django_db


def bulk_devices(client, n, **fields):
    Device.objects.bulk_create([Device(client=client, name=f"dev-{i:05d}",
                                       serial=f"SN{i:05d}", **fields) for i in range(n)])


def test_list_query_count_is_bounded_at_1000_devices(as_user, owner, client_a, client_b):
    # given 1,000 devices over two clients
    bulk_devices(client_a, 600, os_name="Windows 11")
    bulk_devices(client_b, 400, os_name="Debian")
    web = as_user(owner)
    url = reverse("devices") + "?per_page=200&cols=name&cols=client&cols=site&cols=assigned"
    # when the list is loaded, then the query count does not depend on the number of rows
    with CaptureQueriesContext(connection) as ctx:
        response = web.get(url)
    assert response.status_code == 200
    assert response.content.count(b'href="/devices/') >= 200
    assert len(ctx.captured_queries) <= 15, [q["sql"][:120] for q in ctx.captured_queries]
    assert "1000 devices" in response.content.decode()


def test_filters_sort_and_search_by_ip_and_mac(as_user, owner, client_a):
    dev = services.register_agent_device(client_id=client_a.pk, site_id=None,
                                         hostname="findme", agent_ref="a1")
    services.apply_agent_inventory(
        device_id=dev.pk, agent_ref="a1", observed_at=timezone.now(),
        sections={"interfaces": [{"name": "eth1", "mac": "02:00:00:00:00:aa",
                                  "ipv4": ["192.168.7.7", "10.9.9.9"], "ipv6": []}]})
    bulk_devices(client_a, 30)
    web = as_user(owner)
    for q in ("192.168.7.7", "10.9.9.9", "02-00-00-00-00-AA", "findme"):
        body = web.get(reverse("devices"), {"q": q}).content.decode()
        assert "findme" in body and "dev-00001" not in body, q
    body = web.get(reverse("devices"), {"seen": "online"}).content.decode()
    assert "findme" in body and "dev-00001" not in body
    body = web.get(reverse("devices"), {"sort": "-name", "per_page": 25}).content.decode()
    assert body.index("findme") < body.index("dev-00029")


def test_htmx_filter_returns_only_the_table(as_user, owner, client_a):
    bulk_devices(client_a, 3)
    response = as_user(owner).get(reverse("devices"), {"q": "dev-00002"},
                                  HTTP_HX_REQUEST="true", HTTP_HX_TARGET="device-results")
    body = response.content.decode()
    assert "dev-00002" in body and "<html" not in body


def test_technician_sees_only_assigned_clients(as_user, tech_a, client_a, client_b):
    Device.objects.create(client=client_a, name="mine")
    theirs = Device.objects.create(client=client_b, name="theirs")
    web = as_user(tech_a)
    body = web.get(reverse("devices")).content.decode()
    assert "mine" in body and "theirs" not in body
    assert web.get(reverse("device", args=[theirs.pk])).status_code == 404
    assert web.get(reverse("device_tab", args=[theirs.pk, "software"])).status_code == 404
    assert web.get(reverse("device_edit", args=[theirs.pk])).status_code == 404


def test_portal_user_cannot_reach_device_pages(as_user, portal_b, client_b):
    device = Device.objects.create(client=client_b, name="theirs")
    web = as_user(portal_b)
    assert web.get(reverse("devices")).status_code == 403
    assert web.get(reverse("device", args=[device.pk])).status_code == 403


def test_device_page_and_every_tab_render(as_user, owner, client_a):
    site = Site.objects.create(client=client_a, name="HQ")
    dev = services.register_agent_device(client_id=client_a.pk, site_id=site.pk,
                                         hostname="pc-7", agent_ref="a7")
    services.apply_agent_inventory(
        device_id=dev.pk, agent_ref="a7", observed_at=timezone.now(),
        sections={"system": {"os_name": "Debian", "kernel": "6.1", "ram_bytes": 2**33},
                  "software": [{"name": "openssl", "version": "3.0", "source": "dpkg"}],
                  "services": [{"name": "sshd", "state": "running", "enabled": True}]})
    web = as_user(owner)
    page = web.get(reverse("device", args=[dev.pk])).content.decode()
    assert "Acme Dental" in page and "HQ" in page and "as of" in page
    expected = {"summary": "Debian", "inventory": "sshd", "software": "openssl",
                "history": "1 packages reported", "scripts": "script", "metrics": "metric-chart"}
    for tab, text in expected.items():
        response = web.get(reverse("device_tab", args=[dev.pk, tab]))
        assert response.status_code == 200 and text in response.content.decode(), tab
    metrics = web.get(reverse("device_metrics", args=[dev.pk]),
                      {"metric": "cpu.percent"}).json()
    assert metrics["metric"] == "cpu.percent" and isinstance(metrics["points"], list)


def test_metrics_tab_reads_the_agents_series(as_user, owner, client_a):
    agent_models = pytest.importorskip("watchkeeper.agents.models")
    dev = Device.objects.create(client=client_a, name="charted")
    metric = agent_models.MetricName.objects.create(name="cpu.percent")
    now = timezone.now()
    agent_models.MetricSample.objects.bulk_create([
        agent_models.MetricSample(device=dev, metric=metric, ts=now - timedelta(minutes=m),
                                  value=float(m)) for m in (30, 20, 10)])
    web = as_user(owner)
    assert "cpu.percent" in web.get(reverse("device_tab", args=[dev.pk, "metrics"])
                                    ).content.decode()
    points = web.get(reverse("device_metrics", args=[dev.pk]),
                     {"metric": "cpu.percent", "hours": 1}).json()["points"]
    assert [value for _, value in points] == [30.0, 20.0, 10.0]
    assert web.get(reverse("device_metrics", args=[dev.pk]),
                   {"metric": "x; drop"}).status_code == 400


def test_manual_create_and_edit_record_provenance_manual(as_user, owner, client_a):
    web = as_user(owner)
    response = web.post(reverse("device_create"), {
        "client": client_a.pk, "name": "printer-1", "kind": "printer", "status": "deployed",
        "serial": "PR-1", "warranty_end": "2027-01-31", "cost": "199.90"})
    assert response.status_code == 302
    device = Device.objects.get(name="printer-1")
    prov = FieldProvenance.objects.get(device=device, field="serial")
    assert (prov.source_kind, prov.who_id) == (SourceKind.MANUAL, owner.pk)
    response = web.post(reverse("device_edit", args=[device.pk]), {
        "client": client_a.pk, "name": "printer-1", "kind": "printer", "status": "retired",
        "serial": "PR-1", "location": "Room 2"})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.status == "retired" and device.location == "Room 2"
    assert device.changes.filter(subject="status", before="deployed", after="retired").exists()
    history = web.get(reverse("device_tab", args=[device.pk, "history"])).content.decode()
    assert "device-audit" in history and "owner@msp.test" in history


def test_conflict_resolution_take_and_keep(as_user, owner, client_a):
    dev = services.register_agent_device(client_id=client_a.pk, site_id=None,
                                         hostname="pc", agent_ref="a")
    actions.update_device(actor=owner, device=dev, serial="TYPED", model="Typed model")
    services.apply_agent_inventory(
        device_id=dev.pk, agent_ref="a", observed_at=timezone.now(),
        sections={"system": {"serial": "REAL", "model": "Real model"}})
    take = FieldConflict.objects.get(device=dev, field="serial")
    keep = FieldConflict.objects.get(device=dev, field="model")
    web = as_user(owner)
    web.post(reverse("inventory_conflict_resolve", args=[take.pk]), {"choice": "take"})
    web.post(reverse("inventory_conflict_resolve", args=[keep.pk]), {"choice": "keep"})
    dev.refresh_from_db()
    assert dev.serial == "REAL" and dev.model == "Typed model"
    take.refresh_from_db()
    keep.refresh_from_db()
    assert take.status == ConflictStatus.TAKEN and keep.status == ConflictStatus.KEPT
    # a kept value is not raised again by the same report
    services.apply_agent_inventory(
        device_id=dev.pk, agent_ref="a", observed_at=timezone.now(),
        sections={"system": {"serial": "REAL", "model": "Real model", "kernel": "x"}})
    assert not FieldConflict.objects.filter(device=dev, status="open").exists()


def test_saved_views_personal_and_shared(as_user, owner, admin_user, tech_a):
    web = as_user(owner)
    web.post(reverse("device_view_save"), {"name": "Offline", "query": "seen=offline"})
    web.post(reverse("device_view_save"), {"name": "Team laptops", "query": "kind=laptop",
                                           "shared": "on"})
    assert SavedView.objects.filter(owner=owner).count() == 2
    body = as_user(admin_user).get(reverse("devices")).content.decode()
    assert '?kind=laptop">Team laptops' in body and '?seen=offline"' not in body


def test_csv_export_has_the_import_columns(as_user, owner, client_a):
    Device.objects.create(client=client_a, name="exp-1", serial="X1", kind="laptop")
    response = as_user(owner).get(reverse("devices_export"))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["name", "client", "site"]
    assert rows[1][0] == "exp-1" and "X1" in rows[1]


def test_licence_seats_count_installs_and_key_is_encrypted(as_user, owner, client_a):
    for i in range(3):
        dev = services.register_agent_device(client_id=client_a.pk, site_id=None,
                                             hostname=f"h{i}", agent_ref=f"r{i}")
        services.apply_agent_inventory(
            device_id=dev.pk, agent_ref=f"r{i}", observed_at=timezone.now(),
            sections={"software": [{"name": "Microsoft Office 2021", "version": "16",
                                    "source": "msi"}]})
    web = as_user(owner)
    response = web.post(reverse("inventory_licence_create"), {
        "client": client_a.pk, "product": "Office 2021", "match": "Office 2021", "seats": 2,
        "key": "AAAAA-BBBBB"})
    assert response.status_code == 302
    lic = client_a.licences.get()
    assert lic.key_enc and "AAAAA" not in lic.key_enc
    assert actions.reveal_licence_key(actor=owner, licence=lic) == "AAAAA-BBBBB"
    body = web.get(reverse("inventory_licences")).content.decode()
    assert "over the 2 seats" in body


def test_search_tokens_become_filters(as_user, owner, client_a):
    Device.objects.create(client=client_a, name="old-laptop", kind="laptop",
                          last_seen_at=timezone.now() - timedelta(days=2))
    Device.objects.create(client=client_a, name="new-laptop", kind="laptop",
                          last_seen_at=timezone.now())
    Device.objects.create(client=client_a, name="old-server", kind="server",
                          last_seen_at=timezone.now() - timedelta(days=2))
    body = as_user(owner).get(reverse("devices"), {"q": "is:offline kind:laptop"}
                              ).content.decode()
    assert "old-laptop" in body and "new-laptop" not in body and "old-server" not in body
    body = as_user(owner).get(reverse("devices"), {"q": "kind:server old"}).content.decode()
    assert "old-server" in body and "old-laptop" not in body


def test_device_page_shows_the_agents_precise_state(as_user, owner, client_a):
    agent_models = pytest.importorskip("watchkeeper.agents.models")
    dev = services.register_agent_device(client_id=client_a.pk, site_id=None,
                                         hostname="with-agent", agent_ref="x")
    # the device row was touched long ago; the agent checked in a minute ago
    Device.objects.filter(pk=dev.pk).update(last_seen_at=timezone.now() - timedelta(hours=3))
    agent_models.Agent.objects.create(
        client=client_a, device=dev, public_key="k" * 43, hostname="with-agent",
        status="approved", connectivity="online", agent_version="0.1.0",
        last_seen_at=timezone.now() - timedelta(minutes=1))
    page = as_user(owner).get(reverse("device", args=[dev.pk])).content.decode()
    assert "✓ Online" in page and "1\xa0minute ago" in page
    assert "Approved" in page and "v0.1.0" in page


def test_warranty_filter(as_user, owner, client_a):
    today = timezone.localdate()
    Device.objects.create(client=client_a, name="expired-one",
                          warranty_end=today - timedelta(days=1))
    Device.objects.create(client=client_a, name="ending-soon",
                          warranty_end=today + timedelta(days=30))
    Device.objects.create(client=client_a, name="covered-long",
                          warranty_end=today + timedelta(days=400))
    web = as_user(owner)
    for value, expected in (("expired", "expired-one"), ("soon", "ending-soon")):
        body = web.get(reverse("devices"), {"warranty": value}).content.decode()
        names = {n for n in ("expired-one", "ending-soon", "covered-long") if n in body}
        assert names == {expected}, value


def test_client_scope_narrows_the_list_unless_the_url_names_a_client(as_user, owner,
                                                                     client_a, client_b):
    from watchkeeper.core.selectors import SCOPE_SESSION_KEY

    Device.objects.create(client=client_a, name="in-scope")
    Device.objects.create(client=client_b, name="out-of-scope")
    web = as_user(owner)
    session = web.session
    session[SCOPE_SESSION_KEY] = client_a.pk
    session.save()
    body = web.get(reverse("devices")).content.decode()
    assert "in-scope" in body and "out-of-scope" not in body
    body = web.get(reverse("devices"), {"client": ""}).content.decode()
    assert "in-scope" in body and "out-of-scope" in body


def test_device_page_links_its_checks_and_alerts(as_user, owner, client_a):
    from watchkeeper.inventory import actions as inventory_actions

    device = inventory_actions.create_device(actor=None, client=client_a, name="fw-01")
    page = as_user(owner).get(f"/devices/{device.pk}/").content.decode()
    assert f'href="/monitoring/devices/{device.pk}/checks/"' in page
