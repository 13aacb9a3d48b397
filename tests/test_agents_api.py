"""The agents REST API: tokens, approval, revocation, scripts, runs, kill switch — with
permissions and tenant scoping."""

from __future__ import annotations

import pytest

from watchkeeper.agents import actions
from watchkeeper.agents.choices import AgentStatus, CommandStatus, RunStatus
from watchkeeper.agents.models import Agent, Command, EnrollmentToken
from watchkeeper.core.models import AuditEntry, Site

KEY_A = "A" * 43 + "="


@pytest.fixture
def site_a(client_a):
    return Site.objects.create(client=client_a, name="HQ")


@pytest.fixture
def site_b(client_b):
    return Site.objects.create(client=client_b, name="Depot")


def enrolled(site, key: str, hostname: str = "pc-1") -> Agent:
    token, _ = actions.create_enrollment_token(actor="test", client=site.client, site=site)
    return actions.enroll_agent(token=token, public_key=key, facts={"hostname": hostname})


def key(n: int) -> str:
    import base64

    return base64.b64encode(bytes([n]) * 32).decode()


def test_technician_creates_a_token_and_gets_the_install_command_once(as_user, tech_a, site_a):
    # Given a technician of client A
    api = as_user(tech_a)
    # When they create a token for a site of client A
    response = api.post("/api/v1/enrollment-tokens/", {"site": site_a.pk, "hours": 2,
                                                       "auto_approve": True},
                        content_type="application/json")
    # Then the secret and the install command are in the answer, and only a hash is stored
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["token"].startswith("wke_") and body["token"] in body["install_command"]
    token = EnrollmentToken.objects.get(pk=body["id"])
    assert body["token"] not in token.token_hash and token.auto_approve
    # And listing never shows the secret again
    listed = api.get("/api/v1/enrollment-tokens/").json()["results"]
    assert "token" not in listed[0] and listed[0]["state"] == "active"
    # When it is revoked, then it is no longer usable
    assert api.post(f"/api/v1/enrollment-tokens/{token.pk}/revoke/").status_code == 200
    token.refresh_from_db()
    assert token.state == "revoked"


def test_technician_cannot_make_tokens_for_another_client(as_user, tech_a, site_b):
    response = as_user(tech_a).post("/api/v1/enrollment-tokens/", {"site": site_b.pk},
                                    content_type="application/json")
    assert response.status_code == 400
    assert EnrollmentToken.objects.count() == 0


def test_approve_creates_the_device_and_is_audited(as_user, tech_a, site_a, site_b):
    # Given a pending agent at client A and one at client B
    agent = enrolled(site_a, key(1))
    other = enrolled(site_b, key(2))
    api = as_user(tech_a)
    # When the technician lists and approves
    listed = api.get("/api/v1/agents/?status=pending").json()["results"]
    assert [a["id"] for a in listed] == [agent.pk]
    response = api.post(f"/api/v1/agents/{agent.pk}/approve/")
    # Then the agent is approved with a device; the other tenant's agent is out of reach
    assert response.status_code == 200 and response.json()["status"] == "approved"
    assert response.json()["device"]
    assert api.post(f"/api/v1/agents/{other.pk}/approve/").status_code == 404
    assert AuditEntry.objects.filter(object_type="agents.agent", object_id=str(agent.pk),
                                     changes__status=["pending", "approved"]).exists()
    # And approving twice is a conflict, not an error
    assert api.post(f"/api/v1/agents/{agent.pk}/approve/").status_code == 409


def test_readonly_user_sees_agents_but_cannot_approve(as_user, site_a, db):
    from tests.factories import make_user
    from watchkeeper.core.choices import Role

    agent = enrolled(site_a, key(3))
    api = as_user(make_user("ro@msp.test", Role.READONLY))
    assert api.get(f"/api/v1/agents/{agent.pk}/").status_code == 200
    assert api.post(f"/api/v1/agents/{agent.pk}/approve/").status_code == 403
    assert Agent.objects.get(pk=agent.pk).status == AgentStatus.PENDING


def test_script_versions_runs_and_second_approval(as_user, owner, admin_user, tech_a, site_a,
                                                  settings):
    # Given two approved agents at client A and a threshold of one endpoint
    settings.LARGE_JOB_THRESHOLD = 1
    for n in (4, 5):
        actions.approve_agent(actor="test", agent=enrolled(site_a, key(n), f"pc-{n}"))
    # When an admin writes a script and edits it
    created = as_user(admin_user).post("/api/v1/scripts/", {
        "name": "Disk report", "language": "bash", "body": "df -h \"$1\"",
        "parameters": [{"name": "path", "required": True}]}, content_type="application/json")
    assert created.status_code == 201, created.content
    script_id = created.json()["id"]
    edited = as_user(admin_user).patch(f"/api/v1/scripts/{script_id}/",
                                       {"body": "df -h \"$1\" | head"},
                                       content_type="application/json")
    assert edited.status_code == 200 and edited.json()["version"] == 2
    # And a technician runs the version they read on the whole client
    api = as_user(tech_a)
    seen = api.get(f"/api/v1/scripts/{script_id}/").json()["version_id"]
    run = api.post("/api/v1/script-runs/", {
        "script": script_id, "script_version": seen, "target_kind": "client",
        "target_id": site_a.client_id, "parameters": {"path": "/"}},
        content_type="application/json")
    # Then the large job waits; the technician may not approve it, an admin may
    assert run.status_code == 201, run.content
    run_id = run.json()["id"]
    assert run.json()["status"] == RunStatus.AWAITING_APPROVAL
    assert api.post(f"/api/v1/script-runs/{run_id}/approve/").status_code == 403
    approved = as_user(admin_user).post(f"/api/v1/script-runs/{run_id}/approve/")
    assert approved.status_code == 200 and approved.json()["status"] == RunStatus.RUNNING
    commands = Command.objects.filter(run_id=run_id)
    assert commands.count() == 2
    assert {c.body for c in commands} == {"df -h \"$1\" | head"}
    assert {tuple(c.args) for c in commands} == {("/",)}


def test_kill_switch_needs_scripts_approve(as_user, tech_a, owner, site_a):
    agent = actions.approve_agent(actor="test", agent=enrolled(site_a, key(6)))
    script = actions.create_script(actor="test", name="x", language="bash", body="true")
    actions.run_script(actor="test", version=script.current, target_kind="device",
                       target=agent.device)
    assert as_user(tech_a).post("/api/v1/commands/kill-switch/").status_code == 403
    response = as_user(owner).post("/api/v1/commands/kill-switch/")
    assert response.status_code == 200 and response.json() == {"cancelled": 1}
    assert Command.objects.get().status == CommandStatus.CANCELLED


def test_bad_template_placeholder_is_refused(as_user, admin_user):
    response = as_user(admin_user).post("/api/v1/scripts/", {
        "name": "bad", "language": "bash", "body": "echo {{ settings.SECRET_KEY }}"},
        content_type="application/json")
    assert response.status_code == 409
    assert "unknown template placeholders" in response.json()["detail"]


def test_client_user_sees_nothing(as_user, portal_b, site_b):
    enrolled(site_b, key(7))
    assert as_user(portal_b).get("/api/v1/agents/").status_code == 403
