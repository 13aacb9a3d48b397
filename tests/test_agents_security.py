"""Security review fixes of the agents app: who may edit the MSP-wide script library, running
exactly the version that was reviewed, large jobs split into small runs, secret script
parameters, and the signer fingerprint in the install command."""

from __future__ import annotations

import base64
import json

import pytest

from watchkeeper.agents import actions
from watchkeeper.agents.checkin import ingest
from watchkeeper.agents.choices import CommandStatus, RunStatus
from watchkeeper.agents.commands import signer
from watchkeeper.agents.models import Agent, Command, Script, ScriptRun
from watchkeeper.core.models import AuditEntry, Site


@pytest.fixture
def site_a(client_a):
    return Site.objects.create(client=client_a, name="HQ")


def approved(site, n: int):
    token, _ = actions.create_enrollment_token(actor="test", client=site.client, site=site)
    agent = actions.enroll_agent(token=token, public_key=base64.b64encode(bytes([n]) * 32)
                                 .decode(), facts={"hostname": f"pc-{n}"})
    return actions.approve_agent(actor="test", agent=agent)


@pytest.fixture
def key_file(tmp_path, settings):
    settings.SIGNER_KEY_FILE = str(tmp_path / "signer" / "ed25519.key")
    return tmp_path / "signer" / "ed25519.key"


# --- Finding 1: the library is edited by roles that see every client ------------------------

def test_technician_cannot_write_or_edit_library_scripts(as_user, tech_a):
    # Given a library script and a technician (who sees only some clients)
    script = actions.create_script(actor="test", name="Cleanup", language="bash", body="true")
    api = as_user(tech_a)
    # When they try to create or edit a script through the API or the pages
    created = api.post("/api/v1/scripts/", {"name": "x", "language": "bash", "body": "id"},
                       content_type="application/json")
    edited = api.patch(f"/api/v1/scripts/{script.pk}/", {"body": "rm -rf /"},
                       content_type="application/json")
    page_edit = api.post(f"/scripts/{script.pk}/edit/", {
        "name": "Cleanup", "language": "bash", "body": "rm -rf /", "timeout": "300"})
    page_new = api.get("/scripts/new/")
    # Then all are forbidden and the script still has its one version
    assert (created.status_code, edited.status_code) == (403, 403)
    assert (page_edit.status_code, page_new.status_code) == (403, 403)
    assert script.versions.count() == 1 and Script.objects.count() == 1
    # But they still see and run scripts
    assert api.get(f"/api/v1/scripts/{script.pk}/").status_code == 200


def test_admin_edits_library_scripts(as_user, admin_user):
    api = as_user(admin_user)
    created = api.post("/api/v1/scripts/", {"name": "x", "language": "bash", "body": "id"},
                       content_type="application/json")
    assert created.status_code == 201, created.content
    edited = api.patch(f"/api/v1/scripts/{created.json()['id']}/", {"body": "id -u"},
                       content_type="application/json")
    assert edited.status_code == 200 and edited.json()["version"] == 2


def test_api_run_refuses_a_version_that_is_no_longer_current(as_user, admin_user, site_a):
    # Given an admin who reviewed version 1 of a script
    agent = approved(site_a, 1)
    script = actions.create_script(actor="test", name="s", language="bash", body="echo v1")
    api = as_user(admin_user)
    seen = api.get(f"/api/v1/scripts/{script.pk}/").json()["version_id"]
    # When someone saves version 2 before the admin's run request arrives
    actions.update_script(actor="test", script=script, body="echo evil")
    response = api.post("/api/v1/script-runs/", {
        "script": script.pk, "script_version": seen, "target_kind": "device",
        "target_id": agent.device_id}, content_type="application/json")
    # Then the run is refused and nothing is queued
    assert response.status_code == 409, response.content
    assert "changed since" in response.json()["detail"]
    assert not Command.objects.exists() and not ScriptRun.objects.exists()
    # And with the current version it runs
    current = api.get(f"/api/v1/scripts/{script.pk}/").json()["version_id"]
    ok = api.post("/api/v1/script-runs/", {
        "script": script.pk, "script_version": current, "target_kind": "device",
        "target_id": agent.device_id}, content_type="application/json")
    assert ok.status_code == 201, ok.content
    assert Command.objects.get().body == "echo evil"


def test_api_run_needs_the_reviewed_version(as_user, admin_user, site_a):
    agent = approved(site_a, 1)
    script = actions.create_script(actor="test", name="s", language="bash", body="echo v1")
    other = actions.create_script(actor="test", name="o", language="bash", body="echo o")
    api = as_user(admin_user)
    missing = api.post("/api/v1/script-runs/", {
        "script": script.pk, "target_kind": "device", "target_id": agent.device_id},
        content_type="application/json")
    foreign = api.post("/api/v1/script-runs/", {
        "script": script.pk, "script_version": other.current.pk, "target_kind": "device",
        "target_id": agent.device_id}, content_type="application/json")
    assert missing.status_code == 400 and "script_version" in missing.json()["errors"]
    assert foreign.status_code == 400
    assert not ScriptRun.objects.exists()


def test_run_form_refuses_a_version_edited_after_the_page_was_shown(as_user, admin_user,
                                                                    site_a):
    # Given the run form showing version 1
    agent = approved(site_a, 1)
    script = actions.create_script(actor="test", name="s", language="bash", body="echo v1")
    page = as_user(admin_user)
    shown = page.get(f"/scripts/{script.pk}/").content.decode()
    assert f'name="script_version" value="{script.current.pk}"' in shown
    v1 = script.current.pk
    # When version 2 is saved and the form (still carrying version 1) is posted
    actions.update_script(actor="test", script=script, body="echo evil")
    response = page.post(f"/scripts/{script.pk}/", {
        "target_kind": "device", "device": agent.device_id, "script_version": v1})
    # Then the page explains and nothing runs
    assert response.status_code == 200
    assert "changed since you opened it" in response.content.decode()
    assert not Command.objects.exists()


# --- Finding 4: splitting a large job does not avoid the second approval ---------------------

def test_small_runs_by_one_requester_add_up_to_a_large_job(as_user, tech_a, admin_user,
                                                           site_a, settings):
    # Given a threshold of two endpoints and three agents
    settings.LARGE_JOB_THRESHOLD = 2
    agents = [approved(site_a, n) for n in (1, 2, 3)]
    script = actions.create_script(actor="test", name="s", language="bash", body="true")
    # When a technician runs the script on two devices, then on a third, within minutes
    first = [actions.run_script(actor=tech_a, version=script.current, target_kind="device",
                                target=a.device) for a in agents[:2]]
    third = actions.run_script(actor=tech_a, version=script.current, target_kind="device",
                               target=agents[2].device)
    # Then the runs within the threshold go, and the one crossing it waits for approval
    assert [r.needs_approval for r in first] == [False, False]
    assert third.needs_approval and third.status == RunStatus.AWAITING_APPROVAL
    assert AuditEntry.objects.filter(object_type="agents.scriptrun", object_id=str(third.pk),
                                     changes__recent_agents=[None, 2]).exists()
    # And another person's run is counted on its own
    other = actions.run_script(actor=admin_user, version=script.current, target_kind="device",
                               target=agents[0].device)
    assert not other.needs_approval


def test_signer_recounts_a_requesters_recent_runs(key_file, tech_a, site_a, settings):
    # Given three one-agent runs by one technician, queued as if the web tier had not
    # flagged the third (a compromised or buggy web process)
    settings.LARGE_JOB_THRESHOLD = 2
    agents = [approved(site_a, n) for n in (1, 2, 3)]
    script = actions.create_script(actor="test", name="s", language="bash", body="true")
    runs = [actions.run_script(actor=tech_a, version=script.current, target_kind="device",
                               target=a.device) for a in agents]
    ScriptRun.objects.filter(pk=runs[2].pk).update(needs_approval=False,
                                                   status=RunStatus.RUNNING)
    Command.objects.filter(run=runs[2]).update(status=CommandStatus.QUEUED)
    # When the signer runs
    result = signer.sign_pending(signer.load_or_create_key())
    # Then it signs the first two and holds the third
    assert result["signed"] == 2 and result["held"] == 1
    assert Command.objects.get(run=runs[2]).status == CommandStatus.QUEUED
    # Until a second person approves it
    ScriptRun.objects.filter(pk=runs[2].pk).update(approved_by=_second_person())
    assert signer.sign_pending(signer.load_or_create_key())["signed"] == 1


def _second_person():
    from tests.factories import make_user
    from watchkeeper.core.choices import Role

    return make_user("second@msp.test", Role.ADMIN)


# --- Finding 9: secret parameters ------------------------------------------------------------

def test_secret_parameter_is_stored_sealed_and_shown_masked(as_user, admin_user, site_a,
                                                            key_file):
    # Given a script with a secret parameter
    agent = approved(site_a, 1)
    script = actions.create_script(
        actor="test", name="Join domain", language="bash", body='join "$1" "$2"',
        parameters=[{"name": "user"}, {"name": "password", "secret": True}])
    api = as_user(admin_user)
    # When an admin runs it with a password
    response = api.post("/api/v1/script-runs/", {
        "script": script.pk, "script_version": script.current.pk, "target_kind": "device",
        "target_id": agent.device_id, "parameters": {"user": "joiner", "password": "S3cr3t!"}},
        content_type="application/json")
    assert response.status_code == 201, response.content
    run = ScriptRun.objects.get()
    command = Command.objects.get()
    # Then the password is in no stored row in clear: run, command args, audit
    assert "S3cr3t!" not in json.dumps(run.parameters)
    assert "S3cr3t!" not in json.dumps(command.args)
    audit_rows = json.dumps(list(AuditEntry.objects.values_list("changes", flat=True)),
                            ensure_ascii=False)
    assert "S3cr3t!" not in audit_rows and actions.MASK in audit_rows
    # And the API and the run page show it masked, the plain parameter as is
    assert response.json()["parameters"] == {"user": "joiner", "password": actions.MASK}
    listed = api.get(f"/api/v1/commands/?run={run.pk}").json()["results"][0]
    assert listed["args"] == ["joiner", actions.MASK]
    html = api.get(f"/scripts/runs/{run.pk}/").content.decode()
    assert "S3cr3t!" not in html and "joiner" in html
    # But the signed payload the agent receives carries the real value
    signer.sign_pending(signer.load_or_create_key())
    command.refresh_from_db()
    assert "S3cr3t!" not in command.payload  # stored sealed
    assert json.loads(signer.open_payload(command.payload))["args"] == ["joiner", "S3cr3t!"]
    delivered = ingest.pending_commands(Agent.objects.get(pk=command.agent_id))
    assert json.loads(delivered[0]["payload"])["args"] == ["joiner", "S3cr3t!"]


def test_run_form_asks_for_a_secret_parameter_without_echoing_it(as_user, admin_user, site_a):
    approved(site_a, 1)
    script = actions.create_script(
        actor="test", name="s", language="bash", body='x "$1"',
        parameters=[{"name": "token", "secret": True}])
    html = as_user(admin_user).get(f"/scripts/{script.pk}/").content.decode()
    assert 'type="password" name="param_token"' in html


def test_secret_parameter_cannot_have_a_default(db):
    with pytest.raises(actions.ActionError):
        actions.create_script(actor="test", name="s", language="bash", body="x",
                              parameters=[{"name": "pw", "secret": True, "default": "hunter2"}])


# --- Finding 10 (server side): the install command names the signer key ----------------------

def test_install_command_names_the_signer_fingerprint(as_user, tech_a, site_a, key_file):
    # Given a published signer key
    key = signer.load_or_create_key()
    published = actions.register_signer_key(actor="signer",
                                            public_key_raw=signer.public_bytes(key))
    # When a token is created on the page and through the API
    page = as_user(tech_a)
    html = page.post("/agents/enrollment/", {"site": site_a.pk, "hours": "1"}).content.decode()
    body = page.post("/api/v1/enrollment-tokens/", {"site": site_a.pk},
                     content_type="application/json").json()
    # Then both install commands carry the SHA-256 fingerprint of the raw public key
    import hashlib

    expected = hashlib.sha256(signer.public_bytes(key)).hexdigest()
    assert published.fingerprint == expected
    assert f"--signer-fingerprint {expected}" in body["install_command"]
    assert f"--signer-fingerprint {expected}" in html
