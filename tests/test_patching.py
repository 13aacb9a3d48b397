"""Patch state on the server: the agent's `updates` section ingested set-based through the
signed check-in (validated; malformed → quarantined with the reason), compliance per device,
client and MSP-wide, the API (OpenAPI) and the pages, tenancy."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.utils import timezone

from tests import aptrepo
from tests.test_agents_ingest import SignedAgent
from watchkeeper.agents import actions
from watchkeeper.agents.models import QuarantinedPayload
from watchkeeper.core.models import AuditEntry, Event, Site
from watchkeeper.patching import selectors
from watchkeeper.patching.models import DevicePatchState, DeviceUpdate

pytestmark = pytest.mark.django_db


def upd(name, classification="bugfix", **kw):
    return {"name": name, "version": "2.0", "installed_version": "1.0", "arch": "all",
            "classification": classification, "source": "os", "origin": "Debian",
            "label": "Debian", "archive": "stable", "site": "deb.debian.org",
            "severity": "unknown", "references": [], "size": 1234, "reboot": False,
            "release_date": "", **kw}


def signed_agent(http, client_obj, host="pc-1") -> SignedAgent:
    site = Site.objects.get_or_create(client=client_obj, name="HQ")[0]
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    token, _ = actions.create_enrollment_token(actor="test", client=client_obj, site=site)
    agent = actions.enroll_agent(token=token, public_key=public, facts={"hostname": host})
    agent = actions.approve_agent(actor="test", agent=agent)
    sa = SignedAgent(http, agent, key, "django")
    sa.seq = 0
    return sa


def report(sa: SignedAgent, updates=None, reboot=None):
    sa.seq += 1
    sections = {}
    if updates is not None:
        sections["updates"] = updates
    if reboot is not None:
        sections["system"] = {"reboot_required": reboot}
    return sa.post({"seq": sa.seq, "inventory": {"sections": sections}})


@pytest.fixture
def agent_a(client, client_a, settings):
    settings.AGENT_BATCH_WRITER = "inline"
    settings.AGENT_LEAN_CHECKIN = False
    return signed_agent(client, client_a)


def test_report_is_stored_set_based_with_state_audit_and_event(agent_a):
    resp = report(agent_a, [upd("openssl", "security", reboot=False),
                            upd("linux-image-amd64", "security", reboot=True),
                            upd("curl")], reboot=True)
    assert resp.status_code == 200, resp.content
    device_id = agent_a.agent.device_id
    rows = {u.name: u for u in DeviceUpdate.objects.filter(device_id=device_id)}
    assert sorted(rows) == ["curl", "linux-image-amd64", "openssl"]
    assert (rows["openssl"].installed_version, rows["openssl"].version,
            rows["openssl"].classification, rows["openssl"].size) == ("1.0", "2.0",
                                                                      "security", 1234)
    assert rows["linux-image-amd64"].reboot is True
    state = DevicePatchState.objects.get(device_id=device_id)
    assert (state.available, state.security, state.reboot_pending) == (3, 2, True)
    event = Event.objects.get(kind="patch_state.changed")
    assert (event.payload["id"], event.payload["security"], event.payload["appeared"]) == (
        device_id, 2, ["curl", "linux-image-amd64", "openssl"])
    assert AuditEntry.objects.filter(object_type="patching.devicepatchstate",
                                     object_id=str(device_id)).count() == 1
    first_seen = rows["openssl"].first_seen_at

    # the next report: openssl installed (gone), curl's candidate moved, zlib new
    resp = report(agent_a, [upd("linux-image-amd64", "security", reboot=True),
                            upd("curl", version="2.1"), upd("zlib1g", "security")])
    assert resp.status_code == 200
    rows = {u.name: u for u in DeviceUpdate.objects.filter(device_id=device_id)}
    assert sorted(rows) == ["curl", "linux-image-amd64", "zlib1g"]
    assert rows["curl"].version == "2.1"
    assert rows["linux-image-amd64"].first_seen_at == first_seen  # kept while missing
    last = Event.objects.filter(kind="patch_state.changed").exclude(pk=event.pk).get()
    assert (last.payload["appeared"], last.payload["resolved"]) == (["zlib1g"], ["openssl"])
    state.refresh_from_db()
    assert (state.available, state.security, state.oldest_security_at) == (3, 2, first_seen)

    # the same report again changes nothing: no event
    count = Event.objects.filter(kind="patch_state.changed").count()
    report(agent_a, [upd("linux-image-amd64", "security", reboot=True),
                     upd("curl", version="2.1"), upd("zlib1g", "security")])
    assert Event.objects.filter(kind="patch_state.changed").count() == count

    # an empty list: everything installed
    report(agent_a, [], reboot=False)
    state.refresh_from_db()
    assert (state.available, state.security, state.reboot_pending) == (0, 0, False)
    assert not DeviceUpdate.objects.filter(device_id=device_id).exists()


@pytest.mark.parametrize("bad, reason", [
    ({"classification": "urgent"}, "classification"),
    ({"source": "somewhere"}, "source"),
    ({"size": -1}, "size"),
    ({"references": "CVE-1"}, "references"),
    ({"reboot": "yes"}, "reboot"),
])
def test_malformed_updates_are_quarantined_with_the_reason(agent_a, bad, reason):
    report(agent_a, [upd("curl")])
    resp = report(agent_a, [upd("openssl", **bad)])
    assert resp.status_code == 400
    q = QuarantinedPayload.objects.get()
    assert reason in q.reason and "updates[0]" in q.reason
    # nothing of the refused report was stored
    assert list(DeviceUpdate.objects.values_list("name", flat=True)) == ["curl"]


def test_refused_by_the_service_is_quarantined(agent_a):
    resp = report(agent_a, [upd("curl", release_date="yesterday")])
    assert resp.status_code == 400
    assert "release_date" in QuarantinedPayload.objects.get().reason
    assert not DeviceUpdate.objects.exists()


def test_compliance_numbers_equal_what_the_agents_reported(client, client_a, client_b,
                                                           owner, tech_a, settings):
    settings.AGENT_BATCH_WRITER = "inline"
    settings.AGENT_LEAN_CHECKIN = False
    a1, a2, silent = (signed_agent(client, client_a, h) for h in ("a1", "a2", "a3"))
    b1 = signed_agent(client, client_b, "b1")
    report(a1, [upd("openssl", "security"), upd("curl", "security"), upd("vim")], reboot=True)
    report(a2, [upd("vim")], reboot=False)
    report(b1, [upd("openssl", "security")], reboot=False)
    # a1's oldest missing security update has been missing for 9 days
    DeviceUpdate.objects.filter(device_id=a1.agent.device_id, name="openssl").update(
        first_seen_at=timezone.now() - timedelta(days=9, hours=1))
    DevicePatchState.objects.filter(device_id=a1.agent.device_id).update(
        oldest_security_at=timezone.now() - timedelta(days=9, hours=1))

    rows = {r["client"]: r for r in selectors.client_compliance(owner)}
    acme = rows["Acme Dental"]
    assert (acme["devices"], acme["missing_security"], acme["missing_devices"],
            acme["days_behind"], acme["reboot_pending"], acme["not_reporting"],
            acme["available"]) == (3, 2, 1, 9, 1, 1, 4)
    bore = rows["Borealis Logistics"]
    assert (bore["devices"], bore["missing_security"], bore["days_behind"],
            bore["not_reporting"]) == (1, 1, 0, 0)
    total = selectors.msp_compliance(list(rows.values()))
    assert (total["devices"], total["missing_security"], total["not_reporting"],
            total["days_behind"]) == (4, 3, 1, 9)
    devices = {d["device"]: d for d in selectors.device_compliance(owner, client_a.pk)}
    assert devices["a3"]["reporting"] is False and devices["a1"]["security"] == 2
    assert devices["a1"]["days_behind"] == 9 and devices["a1"]["reboot_pending"] is True
    # a device not seen for longer than the window stops counting as reporting
    from watchkeeper.inventory.models import Device
    Device.objects.filter(pk=a2.agent.device_id).update(
        last_seen_at=timezone.now() - timedelta(days=4))
    assert {r["client"]: r for r in selectors.client_compliance(owner)}[
        "Acme Dental"]["not_reporting"] == 2

    # tenancy: the technician of client A sees client A only
    assert [r["client"] for r in selectors.client_compliance(tech_a)] == ["Acme Dental"]
    assert set(selectors.updates(tech_a).values_list("client_id", flat=True)) == {
        client_a.pk}


def test_api_and_pages(client, client_a, client_b, owner, tech_a, as_user, settings):
    settings.AGENT_BATCH_WRITER = "inline"
    settings.AGENT_LEAN_CHECKIN = False
    a1 = signed_agent(client, client_a, "a1")
    b1 = signed_agent(client, client_b, "b1")
    report(a1, [upd("openssl", "security"), upd("vim")], reboot=True)
    report(b1, [upd("curl", "security")])
    http = as_user(tech_a)
    data = http.get("/api/v1/patching/updates/?classification=security").json()
    assert [u["name"] for u in data["results"]] == ["openssl"]
    comp = http.get("/api/v1/patching/states/compliance/").json()
    assert [c["client"] for c in comp["clients"]] == ["Acme Dental"]
    assert comp["total"]["missing_security"] == 1
    states = http.get("/api/v1/patching/states/").json()["results"]
    assert [(s["device"], s["security"], s["reboot_pending"]) for s in states] == [
        (a1.agent.device_id, 1, True)]
    schema = http.get("/api/v1/schema",
                      HTTP_ACCEPT="application/vnd.oai.openapi+json").content.decode()
    assert "/api/v1/patching/updates/" in schema and "PatchCompliance" in schema
    # pages; another tenant's device and client are 404
    page = http.get("/patching/?classification=security").content.decode()
    assert "openssl" in page and "vim" not in page and "curl" not in page
    assert "Acme Dental" in http.get("/patching/compliance/").content.decode()
    assert http.get(f"/patching/compliance/{client_a.pk}/").status_code == 200
    assert "openssl" in http.get(f"/patching/devices/{a1.agent.device_id}/").content.decode()
    assert http.get(f"/patching/devices/{b1.agent.device_id}/").status_code == 404
    assert http.get(f"/patching/compliance/{client_b.pk}/").status_code == 404


@pytest.mark.skipif(not aptrepo.available(), reason="dpkg-deb/apt-ftparchive")
def test_real_apt_scan_through_the_check_in(agent_a, tmp_path, monkeypatch, owner):
    """The real scan of a local repository's security update, sent as the agent sends it,
    shows up as a missing security update in compliance."""
    from watchkeeper_agent.collectors import updates
    from watchkeeper_agent.collectors.base import run

    world = aptrepo.AptWorld(tmp_path)
    world.suite("stable", codename="bookworm")
    world.suite("stable-security", label="Debian-Security", codename="bookworm-security")
    world.publish("stable", "wkdemo", "1.0")
    world.publish("stable-security", "wkdemo", "2.0")
    world.mark_installed("wkdemo", "1.0")
    world.update()
    monkeypatch.setenv("APT_CONFIG", str(world.config))
    scanned = updates.apt_updates(run, os_id="debian", flag=str(tmp_path / "none"))
    assert report(agent_a, scanned).status_code == 200
    row = DeviceUpdate.objects.get()
    assert (row.name, row.installed_version, row.version, row.classification, row.source,
            row.archive) == ("wkdemo", "1.0", "2.0", "security", "os", "stable-security")
    [acme] = selectors.client_compliance(owner)
    assert (acme["missing_security"], acme["missing_devices"]) == (1, 1)
