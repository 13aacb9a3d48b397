"""The update scan: every available update with what the package manager says about it.

One item per upgradable package, the same shape on every platform (docs/patching.md):

    {"name", "version" (the candidate), "installed_version", "arch",
     "classification": "security" | "bugfix" | "feature" | "other",
     "source": "os" | "third_party" | "application",
     "origin", "label", "archive", "site", "severity", "references": [...],
     "size": bytes or "unknown", "reboot": bool, "release_date": "" | ISO date}

apt (Debian, Ubuntu) is real and tested here against a local repository; dnf, Windows Update,
winget, Chocolatey and macOS softwareupdate implement the same interface from their
documented output and are NOT tested on this machine.

Classification rule for apt (documented in docs/patching.md):
- security: a release the candidate comes from has an archive or codename ending in
  `-security` (Debian's `bookworm-security`, Ubuntu's `jammy-security`) or the label
  `Debian-Security`;
- feature: the candidate comes only from a `-backports` archive;
- bugfix: any other candidate from the OS's own repositories (point releases,
  `-updates`, `-proposed-updates`);
- other: a candidate from a third-party repository that does not say it is security.
Source: "os" when the release's origin is the distribution's (Debian, Ubuntu, or the `ID`
of /etc/os-release), else "third_party".
Reboot: the package's name is one that needs a reboot to take effect (kernel, libc,
microcode, systemd, dbus) or is already listed in /var/run/reboot-required.pkgs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

UNKNOWN = "unknown"
OS_ORIGINS = frozenset({"debian", "ubuntu", "devuan", "raspbian", "raspberry pi foundation",
                        "linuxmint", "kali", "fedora", "redhat", "centos", "rocky",
                        "almalinux"})
REBOOT_NAMES = re.compile(r"^(linux-image-|linux-modules-|linux-headers-|linux-firmware|"
                          r"firmware-|intel-microcode$|amd64-microcode$|libc6$|systemd$|"
                          r"dbus$|kernel(-core)?$|glibc$)")
REBOOT_FLAG = "/var/run/reboot-required"

Runner = Callable[[list[str]], "str | None"]


# --- apt ------------------------------------------------------------------------------------
INST = re.compile(r"^Inst (\S+) \[([^\]]+)\] \((\S+) (.*?)(?: \[([^\]]+)\])?\)")


def parse_simulation(text: str) -> list[dict[str, Any]]:
    """`apt-get -s dist-upgrade`: the upgrades (Inst lines with an installed version) with
    the candidate's releases as `Label:Version/Archive`, comma-separated."""
    found = []
    for line in text.splitlines():
        match = INST.match(line)
        if not match:
            continue
        name, installed, candidate, releases, arch = match.groups()
        rels = []
        for rel in (r.strip() for r in releases.split(",")):
            label, _, rest = rel.rpartition(":")
            rels.append({"label": label, "archive": rest.rsplit("/", 1)[-1]})
        found.append({"name": name, "installed_version": installed, "version": candidate,
                      "arch": arch or "", "releases": rels})
    return found


SOURCE_LINE = re.compile(r"^\s*(-?\d+) (\S+) (.+) Packages$")
VERSION_LINE = re.compile(r"^ (?:\*\*\*|   ) (\S+) -?\d+$")


def parse_policy_sources(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """Global `apt-cache policy`: per (uri, dist) the release attributes (o, l, a, n, v) and
    the origin host."""
    sources: dict[tuple[str, str], dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        match = SOURCE_LINE.match(line)
        if match:
            current = {"uri": match.group(2)}
            sources[(match.group(2), match.group(3))] = current
            continue
        stripped = line.strip()
        if current is not None and stripped.startswith("release "):
            for pair in stripped[len("release "):].split(","):
                key, _, value = pair.partition("=")
                current[key] = value
        elif current is not None and stripped.startswith("origin "):
            current["site"] = stripped[len("origin "):]
        elif not line.startswith(" "):
            current = None
    return sources


def parse_print_uris(text: str) -> dict[str, int]:
    """`apt-get -qq --print-uris dist-upgrade`: download size per package name."""
    sizes = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith("'") and parts[2].isdigit():
            sizes[parts[1].split("_", 1)[0]] = int(parts[2])
    return sizes


def classify(releases: Iterable[dict[str, str]], os_id: str = "") -> tuple[str, str]:
    """(classification, source) of a candidate from the releases it is published in."""
    releases = list(releases)
    origins = {(r.get("o") or r.get("label") or "").lower() for r in releases}
    os_names = OS_ORIGINS | ({os_id.lower()} if os_id else set())
    source = "os" if origins & os_names else "third_party"
    for r in releases:
        suites = (r.get("a", r.get("archive", "")), r.get("n", ""))
        if any(s.endswith("-security") for s in suites) or (
                r.get("l", r.get("label", "")) == "Debian-Security"):
            return "security", source
    if source != "os":
        return "other", source
    archives = [r.get("a", r.get("archive", "")) or r.get("n", "") for r in releases]
    if archives and all(a.endswith("-backports") for a in archives):
        return "feature", source
    return "bugfix", source


def reboot_flag(path: str = REBOOT_FLAG) -> tuple[bool, set[str]]:
    """Is a reboot pending (the flag file), and the packages that asked for it."""
    pending = os.path.exists(path)
    try:
        names = set(Path(path + ".pkgs").read_text().split())
    except OSError:
        names = set()
    return pending, names


def apt_updates(run: Runner, *, os_id: str = "", flag: str = REBOOT_FLAG
                ) -> list[dict[str, Any]] | None:
    """Every upgradable package with its classification, source, size and reboot need;
    None when apt is not there or fails."""
    sim = run(["apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade"])
    if sim is None:
        return None
    found = parse_simulation(sim)
    if not found:
        return []
    sources = parse_policy_sources(run(["apt-cache", "policy"]) or "")
    sizes = parse_print_uris(run(["apt-get", "-qq", "--print-uris", "-o",
                                  "Debug::NoLocking=1", "dist-upgrade"]) or "")
    _, reboot_pkgs = reboot_flag(flag)
    items = []
    for f in found:
        # the simulation names each release by Label:Archive; the policy has the rest
        releases = [src for src in sources.values() for r in f["releases"]
                    if (src.get("l", ""), src.get("a", "")) == (r["label"], r["archive"])]
        if not releases:  # no policy data: what the simulation printed is all we know
            releases = [{"label": r["label"], "archive": r["archive"]} for r in f["releases"]]
        classification, source = classify(releases, os_id)
        first = releases[0] if releases else {}
        items.append({
            "name": f["name"], "version": f["version"],
            "installed_version": f["installed_version"], "arch": f["arch"],
            "classification": classification, "source": source,
            "origin": first.get("o", ""), "label": first.get("l", first.get("label", "")),
            "archive": first.get("a", first.get("archive", "")),
            "site": first.get("site") or _host(first.get("uri", "")),
            "severity": UNKNOWN, "references": [],
            "size": sizes.get(f["name"], UNKNOWN),
            "reboot": bool(REBOOT_NAMES.match(f["name"])) or f["name"] in reboot_pkgs,
            "release_date": "",
        })
    return sorted(items, key=lambda i: i["name"])


def _host(uri: str) -> str:
    match = re.match(r"^[a-z+]+://([^/]+)", uri)
    if match:
        return match.group(1)
    return "local" if uri.startswith(("file:", "/", "cdrom:")) else ""


# --- dnf (documented output; NOT tested on this Debian machine) -----------------------------
def dnf_updates(run: Runner) -> list[dict[str, Any]] | None:
    """`dnf repoquery --upgrades` for the candidates and `dnf updateinfo list --updates`
    for advisories (type, severity, id)."""
    out = run(["dnf", "-q", "repoquery", "--upgrades", "--qf",
               "%{name}\t%{evr}\t%{arch}\t%{reponame}\t%{size}\n"])
    if out is None:
        return None
    advisories: dict[str, tuple[str, str, str]] = {}
    info = run(["dnf", "-q", "updateinfo", "list", "--updates"]) or ""
    for line in info.splitlines():
        parts = line.split()
        if len(parts) == 3:
            advisory, kind, nevra = parts
            severity = UNKNOWN
            if "/" in kind:  # "Important/Sec."
                severity, kind = kind.split("/", 1)
            name = re.sub(r"-[^-]+-[^-]+$", "", nevra)
            advisories[name] = (advisory, kind.lower().rstrip("."), severity.lower())
    items = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 5:
            continue
        name, evr, arch, repo, size = parts
        advisory, kind, severity = advisories.get(name, ("", "", UNKNOWN))
        classification = {"sec": "security", "security": "security", "bugfix": "bugfix",
                          "enhancement": "feature", "newpackage": "feature"}.get(kind, "other")
        items.append({"name": name, "version": evr, "installed_version": "", "arch": arch,
                      "classification": classification,
                      "source": "os" if repo.split("-")[0] in OS_ORIGINS | {"baseos",
                                                                             "appstream",
                                                                             "updates"}
                      else "third_party",
                      "origin": repo, "label": "", "archive": repo, "site": "",
                      "severity": severity, "references": [advisory] if advisory else [],
                      "size": int(size) if size.isdigit() else UNKNOWN,
                      "reboot": bool(REBOOT_NAMES.match(name)), "release_date": ""})
    return items


# --- Windows Update, winget, Chocolatey, macOS softwareupdate (NOT tested here) -------------
WINDOWS_UPDATE_PS = (
    "$s=(New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher();"
    "$r=$s.Search('IsInstalled=0 and IsHidden=0');"
    "$r.Updates | ForEach-Object { [pscustomobject]@{ title=$_.Title;"
    " kb=($_.KBArticleIDs -join ','); severity=$_.MsrcSeverity;"
    " categories=($_.Categories | ForEach-Object { $_.Name }) -join ',';"
    " size=[int64]$_.MaxDownloadSize; reboot=[bool]$_.RebootRequired;"
    " cves=($_.CveIDs -join ',') } } | ConvertTo-Json -Compress")


def windows_updates(run: Runner) -> list[dict[str, Any]] | None:
    """Windows Update Agent through PowerShell's COM search (IsInstalled=0)."""
    out = run(["powershell", "-NoProfile", "-Command", WINDOWS_UPDATE_PS])
    if out is None:
        return None
    data = json.loads(out or "[]")
    items = []
    for u in [data] if isinstance(data, dict) else data:
        categories = (u.get("categories") or "").lower()
        classification = ("security" if "security" in categories else
                          "feature" if "feature" in categories else
                          "bugfix" if "update" in categories else "other")
        kb = u.get("kb") or ""
        items.append({"name": f"KB{kb}" if kb else u.get("title", "")[:200],
                      "version": "", "installed_version": "", "arch": "",
                      "classification": classification, "source": "os",
                      "origin": "Windows Update", "label": u.get("title", "")[:200],
                      "archive": "", "site": "", "severity": (u.get("severity") or
                                                              UNKNOWN).lower(),
                      "references": [c for c in (u.get("cves") or "").split(",") if c],
                      "size": u.get("size", UNKNOWN), "reboot": bool(u.get("reboot")),
                      "release_date": ""})
    return items


def winget_updates(run: Runner) -> list[dict[str, Any]] | None:
    """`winget upgrade`: a fixed-width table Name, Id, Version, Available, Source."""
    out = run(["winget", "upgrade", "--accept-source-agreements", "--disable-interactivity"])
    if out is None:
        return None
    items = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1] in ("winget", "msstore"):
            items.append(_app_item(parts[-4], parts[-3], parts[-2], parts[-1]))
    return items


def choco_updates(run: Runner) -> list[dict[str, Any]] | None:
    """`choco outdated -r`: name|current|available|pinned."""
    out = run(["choco", "outdated", "-r", "--no-color"])
    if out is None:
        return None
    return [_app_item(p[0], p[1], p[2], "chocolatey")
            for p in (line.split("|") for line in out.splitlines()) if len(p) >= 4]


def macos_updates(run: Runner) -> list[dict[str, Any]] | None:
    """`softwareupdate -l`: "* Label: NAME" followed by a Title/Version/Size/Recommended/
    Action line."""
    out = run(["softwareupdate", "-l"])
    if out is None:
        return None
    items, label = [], None
    for line in out.splitlines():
        if line.strip().startswith("* Label:"):
            label = line.split(":", 1)[1].strip()
        elif label and "Title:" in line:
            fields = dict(part.strip().split(": ", 1) for part in line.strip().split(", ")
                          if ": " in part)
            size = re.match(r"(\d+)K", fields.get("Size", ""))
            title = fields.get("Title", label)
            items.append({"name": label, "version": fields.get("Version", ""),
                          "installed_version": "", "arch": "",
                          "classification": "security" if "security" in title.lower()
                          else "other", "source": "os", "origin": "Apple",
                          "label": title, "archive": "", "site": "", "severity": UNKNOWN,
                          "references": [], "size": int(size.group(1)) * 1024 if size
                          else UNKNOWN, "reboot": "restart" in fields.get("Action", "").lower(),
                          "release_date": ""})
            label = None
    return items


def _app_item(name: str, installed: str, available: str, origin: str) -> dict[str, Any]:
    return {"name": name, "version": available, "installed_version": installed, "arch": "",
            "classification": "other", "source": "application", "origin": origin,
            "label": "", "archive": "", "site": "", "severity": UNKNOWN, "references": [],
            "size": UNKNOWN, "reboot": False, "release_date": ""}
