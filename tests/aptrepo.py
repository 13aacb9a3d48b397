"""A throwaway APT world for tests: a local repository built with dpkg-deb and apt-ftparchive,
and an apt configuration (its own sources list, dpkg status, state and cache dirs) that
`APT_CONFIG` points apt-get / apt-cache at. Nothing on the machine's own apt is touched."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

TOOLS = ("dpkg-deb", "apt-ftparchive", "apt-get", "apt-cache")


def available() -> bool:
    return all(shutil.which(t) for t in TOOLS)


def _run(argv: list[str], **kw) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw).stdout


class AptWorld:
    def __init__(self, root: Path):
        self.root = root
        self.repo = root / "repo"
        self.state = root / "state"
        self.suites: dict[str, dict[str, str]] = {}
        self.installed: dict[str, str] = {}
        for d in ("etc/apt/sources.list.d", "etc/apt/preferences.d", "etc/apt/apt.conf.d",
                  "var/lib/apt/lists/partial", "var/cache/apt/archives/partial",
                  "var/lib/dpkg"):
            (self.state / d).mkdir(parents=True, exist_ok=True)
        self.config = root / "apt.conf"
        s = self.state
        self.config.write_text(
            f'Dir "{s}/";\nDir::State "{s}/var/lib/apt";\n'
            f'Dir::State::status "{s}/var/lib/dpkg/status";\n'
            f'Dir::Cache "{s}/var/cache/apt";\nDir::Etc "{s}/etc/apt";\n'
            'Debug::NoLocking "1";\nAPT::Architectures { "all"; "amd64"; };\n')
        self.env = {"APT_CONFIG": str(self.config), "LC_ALL": "C", "PATH": "/usr/bin:/bin"}

    def suite(self, name: str, *, origin: str = "Debian", label: str = "Debian",
              codename: str = "") -> None:
        self.suites[name] = {"Origin": origin, "Label": label, "Suite": name,
                             "Codename": codename or name}

    def publish(self, suite: str, package: str, version: str) -> None:
        build = self.root / "build" / f"{package}-{version}"
        (build / "DEBIAN").mkdir(parents=True, exist_ok=True)
        (build / "usr/share/doc" / package).mkdir(parents=True, exist_ok=True)
        (build / "usr/share/doc" / package / "README").write_text(f"{package} {version}\n")
        (build / "DEBIAN/control").write_text(
            f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
            "Maintainer: Test <test@example.org>\nDescription: a test package\n")
        pool = self.repo / "pool" / suite
        pool.mkdir(parents=True, exist_ok=True)
        _run(["dpkg-deb", "--build", "--root-owner-group", str(build),
              str(pool / f"{package}_{version}_all.deb")])
        self._index()

    def _index(self) -> None:
        for name, release in self.suites.items():
            dist = self.repo / "dists" / name
            binary = dist / "main" / "binary-all"
            binary.mkdir(parents=True, exist_ok=True)
            (self.repo / "pool" / name).mkdir(parents=True, exist_ok=True)
            (binary / "Packages").write_text(
                _run(["apt-ftparchive", "packages", f"pool/{name}"], cwd=self.repo))
            opts = [f"-oAPT::FTPArchive::Release::{k}={v}" for k, v in release.items()]
            opts += ["-oAPT::FTPArchive::Release::Architectures=all",
                     "-oAPT::FTPArchive::Release::Components=main"]
            (dist / "Release").write_text(_run(["apt-ftparchive", *opts, "release",
                                                str(dist)]))
        (self.state / "etc/apt/sources.list").write_text("".join(
            f"deb [trusted=yes] file:{self.repo} {name} main\n" for name in self.suites))

    def mark_installed(self, package: str, version: str) -> None:
        """Record the package as installed in the throwaway dpkg status."""
        self.installed[package] = version
        (self.state / "var/lib/dpkg/status").write_text("".join(
            f"Package: {p}\nStatus: install ok installed\nPriority: optional\n"
            f"Maintainer: Test <test@example.org>\nArchitecture: all\nVersion: {v}\n"
            "Description: a test package\n\n" for p, v in sorted(self.installed.items())))

    def update(self) -> None:
        _run(["apt-get", "-q", "update"], env=self.env)
