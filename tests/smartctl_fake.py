"""Put a fake `smartctl` first on PATH: a shell wrapper around tests/smartctl/fake_smartctl.py
that replays recorded smartctl 7 JSON answers from a payload directory (tests/smartctl/fleet:
a healthy SATA SSD, a failing SATA disk, an NVMe drive with a critical warning and a disk
that cannot be opened). Not a test module."""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent / "smartctl"
FLEET = HERE / "fleet"


@dataclass
class FakeSmartctl:
    bin_dir: Path
    log: Path

    @property
    def path(self) -> str:
        return str(self.bin_dir / "smartctl")

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


def make_fake_smartctl(where: Path, payloads: Path = FLEET) -> FakeSmartctl:
    bin_dir = where / "fake-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / "calls.log"
    script = bin_dir / "smartctl"
    script.write_text("#!/bin/sh\nexec " + " ".join(shlex.quote(p) for p in (
        sys.executable, str(HERE / "fake_smartctl.py"), str(payloads), str(log), "--"))
        + ' "$@"\n')
    script.chmod(0o755)
    return FakeSmartctl(bin_dir, log)


def path_with(fake: FakeSmartctl) -> str:
    return os.pathsep.join([str(fake.bin_dir), os.environ.get("PATH", "")])
