"""The installers and one-line commands the enrollment page shows, for this server.

The installers are generic per server (its URL, the agent version and the wheel's SHA-256,
the signer key's fingerprint, --insecure for a plain http server are written into a few
lines at the top); the enrollment token is an argument of the one-line command, never part
of a URL, so it does not land in web server or proxy logs.
"""

from __future__ import annotations

import shlex
from urllib.parse import urlsplit

from django.conf import settings

from . import dist

LAUNCHD_LABEL = "net.watchkeeper.agent"


def base_url() -> str:
    return settings.BASE_URL.rstrip("/")


def plain_http() -> bool:
    return base_url().startswith("http://")


def _fingerprint() -> str:
    from watchkeeper.agents.actions import active_signer_key

    key = active_signer_key()
    return key.fingerprint if key else ""


def _launchd_plist() -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>{LAUNCHD_LABEL}</string>
  <key>ProgramArguments</key>
  <array>
    <string>/opt/watchkeeper-agent/venv/bin/watchkeeper-agent</string>
    <string>--state-dir</string><string>/var/db/watchkeeper-agent</string>
    <string>run</string>
  </array>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><true/>
  <key>ProcessType</key><string>Background</string>
  <key>Nice</key><integer>10</integer>
  <key>LowPriorityIO</key><true/>
  <key>Umask</key><integer>63</integer>
</dict>
</plist>
"""


def shell_installer(manifest: dist.Manifest) -> str:
    """install.sh for Linux (systemd) and macOS (launchd)."""
    server = base_url()
    values = {
        "WK_SERVER": server,
        "WK_SERVER_HOST": urlsplit(server).hostname or "",
        "WK_INSECURE": "1" if plain_http() else "0",
        "WK_SIGNER_FINGERPRINT": _fingerprint(),
        "WK_VERSION": manifest.version,
        "WK_WHEEL": manifest.wheel,
        "WK_WHEEL_SHA256": manifest.sha256(manifest.wheel),
        "WK_LAUNCHD_LABEL": LAUNCHD_LABEL,
    }
    head = ["#!/bin/sh", f"# Watchkeeper agent installer served by {server}"]
    head += [f"{name}={shlex.quote(value)}" for name, value in values.items()]
    head += ["wk_systemd_unit() {", "cat <<'WK_UNIT_EOF'", dist.unit_text().rstrip("\n"),
             "WK_UNIT_EOF", "}", "wk_launchd_plist() {", "cat <<'WK_PLIST_EOF'",
             _launchd_plist().rstrip("\n"), "WK_PLIST_EOF", "}"]
    return "\n".join(head) + "\n" + (dist.FILES / "install.sh").read_text()


def _ps_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def powershell_installer(manifest: dist.Manifest) -> str:
    """install.ps1 for Windows."""
    server = base_url()
    values = {
        "WkServer": server, "WkInsecure": "1" if plain_http() else "0",
        "WkSignerFingerprint": _fingerprint(), "WkVersion": manifest.version,
        "WkWheel": manifest.wheel, "WkWheelSha256": manifest.sha256(manifest.wheel),
    }
    body = (dist.FILES / "install.ps1").read_text()
    # param() must come first in a script: the values go right after it.
    marker = "# --- values written by the server ---"
    lines = [f"${name} = {_ps_quote(value)}" for name, value in values.items()]
    return body.replace(marker, marker + "\n" + "\n".join(lines), 1)


def one_liners(raw_token: str | None = None) -> dict[str, str]:
    """The copy-paste commands for the enrollment page (the token shown once)."""
    server = base_url()
    token = raw_token or "wke_…"
    manifest = dist.load()
    lines = {
        "linux": f"curl -fsSL {server}/agent/v1/install.sh | sudo sh -s -- --token {token}",
        "macos": f"curl -fsSL {server}/agent/v1/install.sh | sudo sh -s -- --token {token}",
        "windows": ("powershell -NoProfile -ExecutionPolicy Bypass -Command \"& ([scriptblock]"
                    f"::Create((irm '{server}/agent/v1/install.ps1'))) -Token '{token}'\""),
        "uninstall": f"curl -fsSL {server}/agent/v1/install.sh | sudo sh -s -- --uninstall",
    }
    if manifest is not None and manifest.deb:
        env = f"WATCHKEEPER_SERVER={server} WATCHKEEPER_TOKEN={token}"
        if plain_http():
            env += " WATCHKEEPER_INSECURE=1"
        fingerprint = _fingerprint()
        if fingerprint:
            env += f" WATCHKEEPER_SIGNER_FINGERPRINT={fingerprint}"
        lines["deb"] = (f"curl -fsSLo /tmp/{manifest.deb} {server}/agent/v1/dist/{manifest.deb}"
                        f" && sudo {env} apt-get install -y /tmp/{manifest.deb}")
    return lines
