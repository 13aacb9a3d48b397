"""A bounded on-disk queue of batches waiting for the server.

Every batch goes through the spool, even when the server is up: it is written to disk before
it is sent and deleted only after the server acknowledged it, so a crash or an outage loses
nothing and replay is always in sequence order. When the spool passes its byte budget the
oldest metrics go first (they are the cheapest to lose); inventory and command results go
only when no metrics are left. Each drop is counted, and the running totals travel with the
next batch so the server knows exactly what was lost.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .state import write_atomic

KINDS = ("metrics", "inventory", "results")
# Lower rank is dropped first.
DROP_RANK = {"metrics": 0, "inventory": 1, "results": 1}


@dataclass(frozen=True)
class Entry:
    seq: int
    kind: str
    path: Path
    size: int


class Spool:
    def __init__(self, directory: Path, max_bytes: int):
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def entries(self) -> list[Entry]:
        found = []
        for path in self.dir.glob("*.json"):
            seq_text, _, kind = path.stem.partition("-")
            if not seq_text.isdigit() or kind not in KINDS:
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            found.append(Entry(int(seq_text), kind, path, size))
        return sorted(found, key=lambda e: e.seq)

    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries())

    def put(self, seq: int, kind: str, batch: dict[str, Any]) -> dict[str, int]:
        """Store a batch; returns {kind: n} of the batches dropped to stay within budget."""
        if kind not in KINDS:
            raise ValueError(kind)
        path = self.dir / f"{seq:012d}-{kind}.json"
        write_atomic(path, json.dumps(batch, separators=(",", ":")).encode())
        return self._enforce_budget(keep=path)

    def _enforce_budget(self, keep: Path) -> dict[str, int]:
        dropped: dict[str, int] = {}
        entries = self.entries()
        total = sum(e.size for e in entries)
        if total <= self.max_bytes:
            return dropped
        # Oldest of the cheapest kind first; the batch just written is dropped last of all.
        victims = sorted(entries, key=lambda e: (e.path == keep, DROP_RANK[e.kind], e.seq))
        for entry in victims:
            if total <= self.max_bytes:
                break
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            total -= entry.size
            dropped[entry.kind] = dropped.get(entry.kind, 0) + 1
        return dropped

    @staticmethod
    def load(entry: Entry) -> dict[str, Any]:
        return json.loads(entry.path.read_text())

    @staticmethod
    def remove(entry: Entry) -> None:
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            pass
