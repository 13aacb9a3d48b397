"""The agent packages the server serves, built from `agent/` at install or CI time (never
committed): `watchkeeper agent-dist` (and `./wk up`) runs `build()`.

Layout of `settings.AGENT_DIST_DIR` (default `<DATA_DIR>/agent-dist`):

    manifest.json                                version, file names, SHA-256 of each file
    wheels/watchkeeper_agent-<v>-py3-none-any.whl  the agent
    wheels/<dependency>.whl                      cryptography, psutil, … for this machine's
                                                 Python and architecture (`pip wheel`)
    watchkeeper-agent_<v>_<arch>.deb             the Debian package (when dpkg-deb exists)

The Debian package carries the same wheels and builds the same virtual environment as the
shell installer (/opt/watchkeeper-agent/venv) in its postinst, with the same systemd unit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

FILES = Path(__file__).resolve().parent / "files"
UNIT_NAME = "watchkeeper-agent.service"
PACKAGE = "watchkeeper-agent"
WHEEL_RE = re.compile(r"^watchkeeper_agent-([^-]+)-py3-none-any\.whl$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]*\.(whl|deb)$")


class DistError(Exception):
    """The packages could not be built (the message says why)."""


@dataclass
class Manifest:
    version: str
    wheel: str
    deb: str | None
    files: dict[str, str]  # name -> sha256 (wheels by bare name, the .deb by its name)
    source_sha256: str

    def sha256(self, name: str) -> str:
        return self.files[name]


def dist_dir() -> Path:
    return Path(settings.AGENT_DIST_DIR)


def default_source() -> Path:
    """agent/ next to src/ in a checkout."""
    return Path(__file__).resolve().parents[4] / "agent"


def unit_text() -> str:
    return (FILES / UNIT_NAME).read_text()


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def source_hash(source: Path) -> str:
    """A hash of the agent's sources and of the packaging files: a rebuild is needed when
    it changes."""
    digest = hashlib.sha256()
    paths = [p for p in sorted(source.rglob("*")) if p.is_file() and not any(
        part in ("build", "__pycache__", "dist") or part.endswith(".egg-info")
        for part in p.relative_to(source).parts)]
    paths += sorted(p for p in FILES.rglob("*") if p.is_file())
    for path in paths:
        digest.update(str(path.name).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def load(directory: Path | None = None) -> Manifest | None:
    path = (directory or dist_dir()) / "manifest.json"
    try:
        data = json.loads(path.read_text())
        return Manifest(**data)
    except (OSError, ValueError, TypeError):
        return None


def file_path(name: str, directory: Path | None = None) -> Path | None:
    """The path of a served file named in the manifest; None for anything else."""
    manifest = load(directory)
    if manifest is None or not SAFE_NAME.match(name) or name not in manifest.files:
        return None
    base = directory or dist_dir()
    path = base / name if name.endswith(".deb") else base / "wheels" / name
    return path if path.is_file() else None


def build(*, source: Path | None = None, out: Path | None = None, deb: bool = True,
          if_changed: bool = False, log=print) -> Manifest:
    source = (source or default_source()).resolve()
    out = (out or dist_dir()).resolve()
    if not (source / "pyproject.toml").is_file():
        raise DistError(f"agent sources not found in {source} (pass --source)")
    wanted = source_hash(source)
    current = load(out)
    if if_changed and current is not None and current.source_sha256 == wanted and all(
            file_path(name, out) for name in current.files):
        log(f"agent packages up to date in {out}")
        return current
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=out))
    try:
        wheels = work / "wheels"
        log(f"building the agent wheel and its dependencies from {source}")
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
              "--wheel-dir", str(wheels), str(source)], "pip wheel")
        names = sorted(p.name for p in wheels.glob("*.whl"))
        agent_wheels = [n for n in names if WHEEL_RE.match(n)]
        if len(agent_wheels) != 1:
            raise DistError(f"pip wheel built {agent_wheels or 'no agent wheel'}")
        wheel = agent_wheels[0]
        version = WHEEL_RE.match(wheel).group(1)
        files = {n: _sha256(wheels / n) for n in names}
        deb_name = None
        if deb:
            if shutil.which("dpkg-deb") is None:
                log("dpkg-deb not found: no .deb built (apt-get install dpkg-dev)")
            else:
                deb_name = build_deb(version=version, wheels=wheels, out=work)
                files[deb_name] = _sha256(work / deb_name)
                log(f"built {deb_name}")
        # Swap the new files in, then the manifest last.
        for old in out.glob("*.deb"):
            old.unlink()
        shutil.rmtree(out / "wheels", ignore_errors=True)
        (wheels).rename(out / "wheels")
        if deb_name:
            (work / deb_name).rename(out / deb_name)
        manifest = Manifest(version=version, wheel=wheel, deb=deb_name, files=files,
                            source_sha256=wanted)
        tmp = out / ".manifest.json.tmp"
        tmp.write_text(json.dumps(manifest.__dict__, indent=2, sort_keys=True))
        tmp.replace(out / "manifest.json")
        log(f"agent {version}: {len(names)} wheels{' and ' + deb_name if deb_name else ''} "
            f"in {out}")
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(argv: list[str], what: str, **kwargs) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False,  # noqa: S603
                          **kwargs)
    if proc.returncode:
        raise DistError(f"{what} failed ({proc.returncode}): "
                        f"{(proc.stderr or proc.stdout).strip()[-2000:]}")


def deb_architecture() -> str:
    """The bundled dependency wheels are built for this machine: so is the package."""
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        return "amd64"
    proc = subprocess.run([dpkg, "--print-architecture"], capture_output=True,  # noqa: S603
                          text=True, check=False)
    return proc.stdout.strip() or "amd64"


CONTROL = """Package: {package}
Version: {version}
Architecture: {arch}
Maintainer: Watchkeeper <agent@watchkeeper.invalid>
Depends: python3 (>= 3.11), python3-venv
Recommends: smartmontools
Section: admin
Priority: optional
Installed-Size: {size}
Homepage: https://github.com/watchkeeper/watchkeeper
Description: Watchkeeper endpoint agent
 Reports inventory and metrics to a Watchkeeper server and runs the scripts it
 signs. Installs into its own virtual environment (/opt/watchkeeper-agent/venv)
 from the wheels in /opt/watchkeeper-agent/wheels; enrolls at install time when
 WATCHKEEPER_SERVER and WATCHKEEPER_TOKEN are set, else with
 `watchkeeper-agent enroll`.
"""


def build_deb(*, version: str, wheels: Path, out: Path) -> str:
    """A .deb of the agent: the wheels, the unit, a /usr/bin link and maintainer scripts."""
    arch = deb_architecture()
    # Debian versions sort "~" before anything: 0.1.0rc1 -> 0.1.0~rc1.
    deb_version = re.sub(r"(\d)(a|b|rc|dev)", r"\1~\2", version)
    stage = Path(tempfile.mkdtemp(prefix="deb-", dir=out))
    stage.chmod(0o755)
    try:
        target = stage / "opt/watchkeeper-agent/wheels"
        target.mkdir(parents=True)
        for wheel in wheels.glob("*.whl"):
            shutil.copy2(wheel, target / wheel.name)
        unit_dir = stage / "lib/systemd/system"
        unit_dir.mkdir(parents=True)
        (unit_dir / UNIT_NAME).write_text(unit_text())
        bin_dir = stage / "usr/bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / PACKAGE).symlink_to(f"/opt/watchkeeper-agent/venv/bin/{PACKAGE}")
        doc = stage / "usr/share/doc" / PACKAGE
        doc.mkdir(parents=True)
        (doc / "copyright").write_text(
            "Watchkeeper endpoint agent. License: AGPL-3.0-or-later.\n"
            "The bundled wheels carry their own licences (cryptography: Apache-2.0 or BSD; "
            "psutil: BSD-3-Clause; cffi: MIT; pycparser: BSD-3-Clause).\n")
        size = sum(p.stat().st_size for p in stage.rglob("*") if p.is_file()) // 1024 + 1
        debian = stage / "DEBIAN"
        debian.mkdir()
        (debian / "control").write_text(CONTROL.format(package=PACKAGE, version=deb_version,
                                                       arch=arch, size=size))
        for script in ("postinst", "prerm", "postrm"):
            shutil.copy2(FILES / "deb" / script, debian / script)
            (debian / script).chmod(0o755)
        for path in stage.rglob("*"):
            if path.is_dir():
                path.chmod(0o755)
            elif path.is_file() and path.parent != debian:
                path.chmod(0o644)
        name = f"{PACKAGE}_{deb_version}_{arch}.deb"
        _run([shutil.which("dpkg-deb") or "dpkg-deb", "--root-owner-group", "-Zxz", "--build",
              str(stage), str(out / name)], "dpkg-deb",
             env={**os.environ, "SOURCE_DATE_EPOCH": "0"})
        return name
    finally:
        shutil.rmtree(stage, ignore_errors=True)
