"""Issue 11, defect 2: scripts written in the web form run on Linux/macOS, and the run page
counts their output.

A browser submits a textarea with CRLF line endings; stored and sent unchanged, bash fails
on `$'uptime\\r'`. Bash and Python bodies are stored (and sent) with LF line endings;
PowerShell bodies are kept as typed (PowerShell reads CRLF and LF alike on every platform,
and Windows tools that edit .ps1 files write CRLF)."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys

import pytest

from watchkeeper.agents import actions
from watchkeeper.agents.choices import CommandStatus
from watchkeeper.agents.models import Agent, Command, Script, ScriptVersion
from watchkeeper.core.models import Site

FORM_BODY = {
    "bash": "set -e\r\necho one\r\nuptime -p || uptime\r\necho done\r\n",
    "python": "import sys\r\nif True:\r\n    print('one')\r\nprint('done')\r\n",
}


@pytest.fixture
def agent(client_a) -> Agent:
    site = Site.objects.create(client=client_a, name="HQ")
    token, _ = actions.create_enrollment_token(actor="test", client=client_a, site=site)
    agent = actions.enroll_agent(token=token, public_key=base64.b64encode(b"\x07" * 32).decode(),
                                 facts={"hostname": "pc-7"})
    return actions.approve_agent(actor="test", agent=agent)


def _run(language: str, body: str, tmp_path) -> subprocess.CompletedProcess:
    """Run a body the way the agent does: written to a file, the file given to the
    interpreter."""
    path = tmp_path / ("script.sh" if language == "bash" else "script.py")
    path.write_bytes(body.encode())
    argv = [shutil.which("bash"), str(path)] if language == "bash" else [sys.executable,
                                                                          str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("language", ["bash", "python"])
def test_a_script_typed_in_the_form_runs_with_lf_line_endings(as_user, admin_user, tech_a,
                                                              agent, language, tmp_path):
    # Given a script posted from the web form with the browser's CRLF line endings
    response = as_user(admin_user).post("/scripts/new/", {
        "name": f"Check {language}", "language": language, "body": FORM_BODY[language],
        "timeout": "60", "parameters": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    version = Script.objects.get(name=f"Check {language}").current
    # Then it is stored with LF line endings
    assert "\r" not in version.body and version.body.count("\n") == 4
    # And the command sent to the agent runs under the real interpreter
    page = as_user(tech_a)
    response = page.post(f"/scripts/{version.script_id}/", {
        "target_kind": "device", "device": agent.device_id, "script_version": version.pk})
    assert response.status_code == 302, response.content.decode()[:2000]
    command = Command.objects.get()
    assert "\r" not in command.body
    result = _run(language, command.body, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "one" and result.stdout.splitlines()[-1] == "done"


def test_a_new_version_saved_from_the_edit_form_is_normalised_too(as_user, admin_user):
    script = actions.create_script(actor="test", name="x", language="bash", body="true\n")
    response = as_user(admin_user).post(f"/scripts/{script.pk}/edit/", {
        "name": "x", "language": "bash", "body": "echo a\r\necho b\r\n", "timeout": "60",
        "parameters": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert script.current.body == "echo a\necho b\n"


def test_the_api_normalises_like_the_form(as_user, admin_user):
    response = as_user(admin_user).post("/api/v1/scripts/", {
        "name": "api", "language": "bash", "body": "echo a\r\necho b\r"},
        content_type="application/json")
    assert response.status_code == 201, response.content
    assert Script.objects.get(name="api").current.body == "echo a\necho b\n"


def test_powershell_keeps_its_line_endings(db):
    script = actions.create_script(actor="test", name="ps", language="powershell",
                                   body="Get-Date\r\nhostname\r\n")
    assert script.current.body == "Get-Date\r\nhostname\r\n"


def test_a_version_stored_with_crlf_before_the_fix_is_sent_with_lf(agent, tmp_path):
    # Given a version saved by an older release, CRLF and all
    script = actions.create_script(actor="test", name="old", language="bash", body="true")
    ScriptVersion.objects.filter(pk=script.current.pk).update(body="echo one\r\necho done\r\n")
    # When it runs, the agent gets LF line endings
    actions.run_script(actor="test", version=script.current, target_kind="device",
                       target=agent.device)
    body = Command.objects.get().body
    assert body == "echo one\necho done\n"
    assert _run("bash", body, tmp_path).stdout == "one\ndone\n"


def test_the_run_page_counts_the_output_characters(as_user, tech_a, agent):
    script = actions.create_script(actor="test", name="count", language="bash", body="true")
    run = actions.run_script(actor="test", version=script.current, target_kind="device",
                             target=agent.device)
    Command.objects.update(status=CommandStatus.FAILED, exit_code=1, stdout="up 3 days\n",
                           stderr="warning")
    page = as_user(tech_a).get(f"/scripts/runs/{run.pk}/").content.decode()
    # 10 characters of stdout + 7 of stderr
    assert "17 characters" in page and "0 characters" not in page
