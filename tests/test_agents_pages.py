"""The agents pages: enrollment (token shown once with the install command), quarantine
approval, agent detail, script library, runs with output, kill switch."""

from __future__ import annotations

import base64

import pytest

from watchkeeper.agents import actions
from watchkeeper.agents.choices import AgentStatus, CommandStatus
from watchkeeper.agents.models import Agent, Command, EnrollmentToken, Script
from watchkeeper.core.models import Site


@pytest.fixture
def site_a(client_a):
    return Site.objects.create(client=client_a, name="HQ")


def enrolled(site, n: int, hostname: str = "pc-1") -> Agent:
    token, _ = actions.create_enrollment_token(actor="test", client=site.client, site=site)
    return actions.enroll_agent(token=token, public_key=base64.b64encode(bytes([n]) * 32)
                                .decode(), facts={"hostname": hostname, "os": "Debian 12"})


def test_token_page_shows_the_install_command_once(as_user, tech_a, site_a):
    page = as_user(tech_a)
    # When a technician creates a token in the UI
    response = page.post("/agents/enrollment/", {"site": site_a.pk, "hours": "1"})
    # Then the answer holds the copy-paste command with the secret, uncached
    assert response.status_code == 200
    html = response.content.decode()
    assert "watchkeeper-agent enroll --server" in html and "wke_" in html
    assert response["Cache-Control"] == "no-store"
    token = EnrollmentToken.objects.get()
    # And the list afterwards shows only the prefix
    listing = page.get("/agents/enrollment/").content.decode()
    assert f"wke_{token.prefix}_…" in listing
    secret = html.split(f"wke_{token.prefix}_")[1].split(" ")[0].split('"')[0]
    assert secret not in listing
    # When it is revoked from the list, then its state says so
    page.post(f"/agents/enrollment/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.state == "revoked"


def test_pending_agent_is_approved_from_the_quarantine_list(as_user, tech_a, site_a):
    agent = enrolled(site_a, 1, "reception-pc")
    page = as_user(tech_a)
    listing = page.get("/agents/").content.decode()
    assert "Waiting for approval" in listing and "reception-pc" in listing
    response = page.post(f"/agents/{agent.pk}/approve/")
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.status == AgentStatus.APPROVED and agent.device_id
    detail = page.get(f"/agents/{agent.pk}/").content.decode()
    assert agent.fingerprint in detail and "reception-pc" in detail


def test_script_create_run_and_output(as_user, admin_user, tech_a, site_a):
    agent = actions.approve_agent(actor="test", agent=enrolled(site_a, 2))
    # Given a script an admin wrote (technicians run library scripts, they do not edit them)
    response = as_user(admin_user).post("/scripts/new/", {
        "name": "Uptime", "language": "bash", "body": "uptime", "timeout": "60",
        "parameters": '[{"name": "unit", "required": false}]'})
    assert response.status_code == 302, response.content.decode()[:2000]
    script = Script.objects.get(name="Uptime")
    # When a technician runs the version the page showed them
    page = as_user(tech_a)
    response = page.post(f"/scripts/{script.pk}/", {
        "target_kind": "device", "device": agent.device_id, "param_unit": "s",
        "script_version": script.current.pk})
    assert response.status_code == 302, response.content.decode()[:3000]
    command = Command.objects.get()
    assert command.args == ["s"] and command.status == CommandStatus.QUEUED
    Command.objects.filter(pk=command.pk).update(status=CommandStatus.SUCCEEDED, exit_code=0,
                                                 stdout="up 3 days")
    run_page = page.get(response["Location"]).content.decode()
    assert "up 3 days" in run_page


def test_kill_switch_page_needs_typed_confirmation(as_user, owner, tech_a, site_a):
    agent = actions.approve_agent(actor="test", agent=enrolled(site_a, 3))
    script = actions.create_script(actor="test", name="x", language="bash", body="true")
    actions.run_script(actor="test", version=script.current, target_kind="device",
                       target=agent.device)
    assert as_user(tech_a).post("/agents/kill-switch/", {"confirm": "CANCEL ALL"}
                                ).status_code == 403
    page = as_user(owner)
    page.post("/agents/kill-switch/", {"confirm": "yes"})
    assert Command.objects.get().status == CommandStatus.QUEUED
    page.post("/agents/kill-switch/", {"confirm": "CANCEL ALL"})
    assert Command.objects.get().status == CommandStatus.CANCELLED


@pytest.mark.parametrize("url", ["/agents/", "/agents/enrollment/", "/scripts/",
                                 "/scripts/new/", "/agents/quarantine/"])
def test_pages_render_for_an_admin(as_user, admin_user, url):
    assert as_user(admin_user).get(url).status_code == 200


def test_portal_user_is_refused(as_user, portal_b):
    assert as_user(portal_b).get("/agents/").status_code == 403
