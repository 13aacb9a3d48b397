"""Agent installers served by the server (issue 11, defect 4 and "Agent installers").

End to end, on this machine: the packages are built from agent/ (`agent-dist`: the agent
wheel, its dependency wheels, the .deb), a server runs on a loopback port, and

- the Linux one-liner the enrollment page shows (`curl … | sh -s -- --token …`) installs the
  agent into a throwaway root (WK_ROOT: no root rights, nothing outside the temporary
  directory), its own virtual environment, the systemd unit, and enrolls with --insecure
  (the loopback server speaks plain http); run again it changes nothing; --uninstall
  removes it;
- the .deb is installed for real with dpkg into a throwaway root (`dpkg --root …
  --force-script-chrootless`: the maintainer scripts run against DPKG_ROOT), its postinst
  builds the virtual environment and enrolls; purge removes it.

systemd cannot run in this container: the unit is checked with `systemd-analyze verify`
against the throwaway root (its ExecStart must exist there), and the agent is started
directly (`run --once`) — after which its device is in the inventory.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from django.test import override_settings

from tests.agent_harness import LoopbackServer
from tests.conftest import sign_in
from tests.factories import make_user
from watchkeeper.agents import actions
from watchkeeper.agents.commands import signer
from watchkeeper.agents.installers import dist
from watchkeeper.agents.models import Agent
from watchkeeper.core.choices import Role
from watchkeeper.core.models import Site
from watchkeeper.inventory.models import Device

# Starts its own platform on SQLite / builds packages: the PostgreSQL pass skips it.
pytestmark = pytest.mark.engine_agnostic

CURL = shutil.which("curl")
DPKG = shutil.which("dpkg")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
HOST_PYTHON = "/usr/bin/python3"
# The installers build a virtual environment with the system's python3 (python3-venv).
HAS_VENV = os.path.exists(HOST_PYTHON) and subprocess.run(
    [HOST_PYTHON, "-c", "import ensurepip, venv"], capture_output=True, check=False
).returncode == 0
needs_venv = pytest.mark.skipif(not HAS_VENV, reason="/usr/bin/python3 with python3-venv "
                                "is needed (apt-get install python3-venv)")


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> Path:
    """The agent packages, built once for the module as CI and `./wk up` build them."""
    out = tmp_path_factory.mktemp("agent-dist")
    manifest = dist.build(out=out, log=lambda line: None)
    assert manifest.wheel.startswith("watchkeeper_agent-")
    return out


@pytest.fixture
def server(packages, transactional_db):
    srv = LoopbackServer()
    with override_settings(AGENT_DIST_DIR=packages, BASE_URL=srv.url):
        srv.start()
        yield srv
        srv.stop()


@pytest.fixture
def technician(transactional_db):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.factories import make_client

    # The published command-signing key: the one-liners name its fingerprint.
    actions.register_signer_key(actor="signer", public_key_raw=signer.public_bytes(
        Ed25519PrivateKey.generate()))
    client = make_client("Harbour Vets")
    site = Site.objects.create(client=client, name="Quay Street")
    tech = make_user("installer@msp.test", Role.TECHNICIAN)
    tech.assigned_clients.add(client)
    return tech, site


def _input_value(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*value="([^"]*)"', page) or re.search(
        rf'value="([^"]*)"[^>]*id="{element_id}"', page)
    assert match, f"no #{element_id} on the page"
    return html.unescape(match.group(1))


def _sh(command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a copy-pasted command line. This container runs tests as root without sudo, and
    the throwaway root needs no root rights: `sudo ` is dropped."""
    command = command.replace("sudo ", "")
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, check=False)


def _verify_unit(root: Path, unit: str) -> None:
    """systemd-analyze verify against the throwaway root: the unit parses and its ExecStart
    exists and is executable there. The root gets the host's targets the unit refers to."""
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze not installed")
    targets = root / "lib/systemd/system"
    targets.mkdir(parents=True, exist_ok=True)
    for target in Path("/lib/systemd/system").glob("*.target"):
        if not (targets / target.name).exists():
            shutil.copy(target, targets / target.name)
    proc = subprocess.run([SYSTEMD_ANALYZE, "verify", f"--root={root}", unit],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def _run_agent_once(agent_bin: Path, state: Path) -> dict:
    proc = subprocess.run([str(agent_bin), "--state-dir", str(state), "run", "--once",
                           "--inventory", "always"], capture_output=True, text=True,
                          timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def _device_appears(agent_id: str, site: Site) -> Device:
    agent = Agent.objects.get(uid=agent_id)
    assert agent.site_id == site.pk and agent.device_id is not None
    device = Device.objects.get(pk=agent.device_id)
    assert device.client_id == site.client_id and device.last_seen_at is not None
    assert device.hostname == socket.gethostname()
    return device


@needs_venv
@pytest.mark.skipif(CURL is None, reason="curl not installed")
def test_the_linux_one_liner_installs_enrolls_and_the_device_appears(server, technician,
                                                                     client, tmp_path):
    tech, site = technician
    http = sign_in(client, tech)
    # Given the one-liner the enrollment page shows for a new token of one site
    page = http.post("/agents/enrollment/", {"site": site.pk, "hours": "1",
                                             "auto_approve": "on"}).content.decode()
    line = _input_value(page, "install-linux")
    assert line.startswith(f"curl -fsSL {server.url}/agent/v1/install.sh | sudo sh -s -- "
                           "--token wke_")
    # the manual command knows the server is plain http
    assert _input_value(page, "install-cmd").endswith("--insecure") or " --insecure" in \
        _input_value(page, "install-cmd")
    root = tmp_path / "root"
    env = {"WK_ROOT": str(root), "WK_PYTHON": HOST_PYTHON}
    # When it runs on a fresh machine (a throwaway root)
    first = _sh(line, env)
    assert first.returncode == 0, first.stderr
    venv_agent = root / "opt/watchkeeper-agent/venv/bin/watchkeeper-agent"
    state = root / "var/lib/watchkeeper-agent"
    unit = root / "etc/systemd/system/watchkeeper-agent.service"
    # Then the agent is in its own virtual environment, linked on the PATH
    assert venv_agent.is_file() and os.access(venv_agent, os.X_OK)
    assert os.readlink(root / "usr/local/bin/watchkeeper-agent") == str(venv_agent)
    # and the unit is the shipped one, whose ExecStart is that agent
    assert unit.read_text() == dist.unit_text()
    assert "ExecStart=/opt/watchkeeper-agent/venv/bin/watchkeeper-agent run" in unit.read_text()
    _verify_unit(root, "/etc/systemd/system/watchkeeper-agent.service")
    # and it enrolled with this server, --insecure since it is plain http, pinning the
    # signer key whose fingerprint the installer carries
    enrollment = json.loads((state / "enrollment.json").read_text())
    assert enrollment["server"] == server.url and enrollment["insecure"] is True
    assert f"--signer-fingerprint {actions.active_signer_key().fingerprint}" in \
        _input_value(page, "install-cmd")
    assert hashlib.sha256(base64.b64decode(enrollment["signer_public_key"])).hexdigest() == \
        actions.active_signer_key().fingerprint
    assert "no running service manager here" in first.stderr
    # When the agent is started (directly: no systemd here), its device appears
    assert _run_agent_once(venv_agent, state)["outcome"] == "ok"
    device = _device_appears(enrollment["agent_id"], site)
    assert device.name in http.get("/devices/").content.decode()
    # When the one-liner runs again, nothing changes: same agent, nothing reinstalled
    again = _sh(line, env)
    assert again.returncode == 0, again.stderr
    assert "already installed" in again.stderr and "already enrolled" in again.stderr
    assert json.loads((state / "enrollment.json").read_text())["agent_id"] == \
        enrollment["agent_id"]
    assert Agent.objects.count() == 1
    # When it is uninstalled, the agent and unit go and the key stays; --purge takes it too
    uninstall = line.split("--token")[0] + "--uninstall"
    gone = _sh(uninstall, env)
    assert gone.returncode == 0, gone.stderr
    assert not (root / "opt/watchkeeper-agent").exists() and not unit.exists()
    assert not (root / "usr/local/bin/watchkeeper-agent").is_symlink()
    assert (state / "agent.key").exists()
    assert _sh(uninstall + " --purge", env).returncode == 0 and not state.exists()


@needs_venv
@pytest.mark.skipif(DPKG is None or CURL is None, reason="dpkg or curl not installed")
def test_the_deb_installs_for_real_and_the_device_appears(server, technician, client,
                                                         tmp_path):
    tech, site = technician
    # Given the .deb one-liner the API returns with a new token
    response = sign_in(client, tech).post("/api/v1/enrollment-tokens/", {
        "site": site.pk, "hours": 1, "auto_approve": True}, content_type="application/json")
    assert response.status_code == 201, response.content
    line = response.json()["installers"]["deb"]
    download, install = line.split(" && ")
    manifest = dist.load(dist.dist_dir())
    assert download.endswith(f"{server.url}/agent/v1/dist/{manifest.deb}")
    deb = tmp_path / manifest.deb
    fetched = _sh(download.replace(f"/tmp/{manifest.deb}", str(deb)))
    assert fetched.returncode == 0, fetched.stderr
    # the values the one-liner hands to the package's postinst
    values = dict(word.split("=", 1) for word in shlex.split(install) if "=" in word
                  and word.split("=", 1)[0].startswith("WATCHKEEPER_"))
    assert values["WATCHKEEPER_SERVER"] == server.url and values["WATCHKEEPER_INSECURE"] == "1"
    assert values["WATCHKEEPER_TOKEN"].startswith("wke_")
    # When dpkg installs it (into a throwaway root; the host's python3 is the dependency)
    root = tmp_path / "root"
    for sub in ("var/lib/dpkg/updates", "var/lib/dpkg/info", "var/lib/dpkg/triggers"):
        (root / sub).mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    dpkg = [DPKG, f"--root={root}", "--force-script-chrootless", "--force-not-root",
            "--force-depends"]
    installed = subprocess.run([*dpkg, "-i", str(deb)], capture_output=True, text=True,
                               timeout=300, env={**os.environ, **values}, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    status = subprocess.run([DPKG, f"--root={root}", "-s", "watchkeeper-agent"],
                            capture_output=True, text=True, check=False).stdout
    assert "Status: install ok installed" in status
    # Then the postinst built the virtual environment and enrolled
    venv_agent = root / "opt/watchkeeper-agent/venv/bin/watchkeeper-agent"
    state = root / "var/lib/watchkeeper-agent"
    assert venv_agent.is_file()
    assert os.readlink(root / "usr/bin/watchkeeper-agent") == \
        "/opt/watchkeeper-agent/venv/bin/watchkeeper-agent"
    enrollment = json.loads((state / "enrollment.json").read_text())
    assert enrollment["server"] == server.url
    # and the unit (the same file as the shell installer's) is valid
    assert (root / "lib/systemd/system/watchkeeper-agent.service").read_text() == \
        dist.unit_text()
    _verify_unit(root, "/lib/systemd/system/watchkeeper-agent.service")
    # When the agent starts, its device appears
    assert _run_agent_once(venv_agent, state)["outcome"] == "ok"
    _device_appears(enrollment["agent_id"], site)
    # When the package is purged, the environment and the state go
    purged = subprocess.run([*dpkg, "--purge", "watchkeeper-agent"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert not (root / "opt/watchkeeper-agent").exists() and not state.exists()


# --- the served files, without a live server ------------------------------------------------

def test_installers_say_not_built_until_agent_dist_ran(client, settings, tmp_path):
    settings.AGENT_DIST_DIR = tmp_path / "empty"
    for path in ("install.sh", "install.ps1", "dist/",
                 "dist/watchkeeper_agent-0.1.0-py3-none-any.whl"):
        response = client.get(f"/agent/v1/{path}")
        assert response.status_code == 503, path
        assert "watchkeeper agent-dist" in response.json()["detail"]


def test_the_packages_are_served_with_their_hashes_and_nothing_else(client, settings,
                                                                    packages):
    settings.AGENT_DIST_DIR = packages
    manifest = dist.load(packages)
    index = client.get("/agent/v1/dist/").content.decode()
    for name, sha in manifest.files.items():
        assert f'href="{name}#sha256={sha}"' in index
    wheel = client.get(f"/agent/v1/dist/{manifest.wheel}")
    assert wheel.status_code == 200
    assert hashlib.sha256(b"".join(wheel.streaming_content)).hexdigest() == \
        manifest.files[manifest.wheel]
    assert manifest.deb and client.get(f"/agent/v1/dist/{manifest.deb}")[
        "Content-Type"] == "application/vnd.debian.binary-package"
    for bad in ("manifest.json", "..%2Fmanifest.json", "nope.whl", ".build-x.whl"):
        assert client.get(f"/agent/v1/dist/{bad}").status_code == 404, bad


@pytest.mark.parametrize("base,insecure", [("http://10.1.2.3:8000", "1"),
                                           ("https://rmm.example.com", "0")])
def test_the_shell_installer_is_valid_sh_and_carries_this_server(client, settings, packages,
                                                                 base, insecure, db):
    settings.AGENT_DIST_DIR, settings.BASE_URL = packages, base
    manifest = dist.load(packages)
    response = client.get("/agent/v1/install.sh")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    text = response.content.decode()
    assert f"WK_SERVER={base}\n" in text and f"WK_INSECURE={insecure}\n" in text
    assert f"WK_WHEEL_SHA256={manifest.files[manifest.wheel]}\n" in text
    assert dist.unit_text() in text
    for shell in ("sh", "bash"):
        syntax = subprocess.run([shell, "-n"], input=text, capture_output=True, text=True,
                                check=False)
        assert syntax.returncode == 0, syntax.stderr
    # The PowerShell installer: the values come right after param(), before any use.
    ps1 = client.get("/agent/v1/install.ps1").content.decode()
    assert ps1.index("param(") < ps1.index(f"$WkServer = '{base}'") < ps1.index("$WkServer/")


def test_a_bad_option_is_a_clear_error_and_changes_nothing(client, settings, packages,
                                                         tmp_path, db):
    settings.AGENT_DIST_DIR = packages
    script = tmp_path / "install.sh"
    script.write_bytes(client.get("/agent/v1/install.sh").content)
    env = {**os.environ, "WK_ROOT": str(tmp_path / "root"), "WK_PYTHON": HOST_PYTHON}
    bad = subprocess.run(["sh", str(script), "--tokn", "x"], capture_output=True, text=True,
                         env=env, check=False)
    assert bad.returncode == 1 and "unknown option: --tokn" in bad.stderr
    assert not (tmp_path / "root").exists()


def test_the_enroll_command_says_insecure_only_for_a_plain_http_server(settings, db):
    settings.BASE_URL = "http://10.1.2.3:8000"
    assert actions.install_command("wke_x_y").split()[-1] == "--insecure"
    settings.BASE_URL = "https://rmm.example.com/"
    command = actions.install_command("wke_x_y")
    assert "--insecure" not in command and "--server https://rmm.example.com --token" in command


def test_agent_dist_rebuilds_only_when_the_sources_changed(packages):
    before = (packages / "manifest.json").stat().st_mtime_ns
    lines = []
    dist.build(out=packages, if_changed=True, log=lines.append)
    assert lines == [f"agent packages up to date in {packages}"]
    assert (packages / "manifest.json").stat().st_mtime_ns == before


def test_the_macos_daemon_runs_the_agent_the_installer_puts_in_place(settings, packages, db,
                                                                    client):
    """Not run on macOS here; the launchd plist the installer writes parses and starts the
    agent from the virtual environment the installer builds, with the macOS state dir."""
    import plistlib

    from watchkeeper.agents.installers import scripts

    settings.AGENT_DIST_DIR = packages
    plist = plistlib.loads(scripts._launchd_plist().encode())
    assert plist["Label"] == scripts.LAUNCHD_LABEL and plist["KeepAlive"] is True
    assert plist["ProgramArguments"] == [
        "/opt/watchkeeper-agent/venv/bin/watchkeeper-agent", "--state-dir",
        "/var/db/watchkeeper-agent", "run"]
    text = client.get("/agent/v1/install.sh").content.decode()
    assert 'STATE="$ROOT/var/db/watchkeeper-agent"' in text
    assert 'PREFIX="$ROOT/opt/watchkeeper-agent"' in text


def test_the_cli_token_prints_the_installers(db, capsys):
    from django.core.management import call_command

    from tests.factories import make_client

    site = Site.objects.create(client=make_client("Cli Co"), name="HQ")
    call_command("enrollment_token", "create", "--client", "Cli Co", "--site", site.name,
                 "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["installers"]["linux"].endswith(f"--token {out['token']}")
    assert out["install"].startswith("watchkeeper-agent enroll --server ")
