"""The agent's work: enroll, collect, spool, send, run commands.

Metrics run on a fast timer and inventory on a slow one, each with jitter so a fleet that
rebooted together does not check in together. Every batch is spooled before it is sent (see
spool.py), so the send path is one loop: oldest batch first, stop at the first failure.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import threading
import time
from typing import Any

from . import __version__
from .collectors import Collector, for_platform
from .commands import execute, interrupted_results
from .protocol import INVENTORY_SECTIONS, b64d, section_hash
from .spool import KINDS, Spool
from .state import Enrollment, State
from .transport import Refused, Transport, Unreachable, check_server_url

log = logging.getLogger("watchkeeper_agent")

DEFAULT_SPOOL_BYTES = 50 * 1024 * 1024
CHECKIN_PATH = "/agent/v1/checkin"
ENROLL_PATH = "/agent/v1/enroll"
STATUS_PATH = "/agent/v1/status"


class NotEnrolled(Exception):
    pass


class SignerMismatch(Exception):
    """The server's command-signing key is not the one the install command named."""


def fingerprint_of(signer_public_key_b64: str) -> str:
    """SHA-256 of the raw signer public key, in hex (as the enrollment page shows it)."""
    return hashlib.sha256(b64d(signer_public_key_b64)).hexdigest()


def _normalise_fingerprint(value: str) -> str:
    clean = value.strip().lower().replace(":", "")
    if len(clean) != 64 or any(c not in "0123456789abcdef" for c in clean):
        raise ValueError("--signer-fingerprint must be the 64 hex digits of a SHA-256")
    return clean


class Agent:
    def __init__(self, state: State, *, spool_bytes: int = DEFAULT_SPOOL_BYTES,
                 collector: Collector | None = None, timeout: float = 15.0):
        self.state = state
        self.state.ensure()
        self.spool = Spool(state.spool_dir, spool_bytes)
        self._collector = collector
        self.timeout = timeout

    @property
    def collector(self) -> Collector:
        if self._collector is None:
            self._collector = for_platform()
        return self._collector

    # --- enrollment -----------------------------------------------------------------------
    def enroll(self, server: str, token: str, *, insecure: bool = False,
               signer_fingerprint: str | None = None) -> Enrollment:
        """Enroll with a token. Over https:// only unless `insecure`; with
        `signer_fingerprint`, the signer key the server returns must match it, or nothing is
        saved (the agent then never trusts that key)."""
        check_server_url(server, insecure=insecure)
        expected = (_normalise_fingerprint(signer_fingerprint)
                    if signer_fingerprint else None)
        key = self.state.load_or_create_key()
        transport = Transport(server, timeout=self.timeout, insecure=insecure)
        answer = transport.request("POST", ENROLL_PATH, {
            "token": token,
            "public_key": self.state.public_key_b64(key),
            "facts": self.collector.facts(),
            "agent_version": __version__,
        })
        signer_key = str(answer.get("signer_public_key") or "")
        if expected is not None:
            try:
                actual = fingerprint_of(signer_key)
            except ValueError:
                actual = ""
            if not hmac.compare_digest(actual, expected):
                raise SignerMismatch(
                    f"the server's signer key has fingerprint {actual or 'none'}, not "
                    f"{expected}: enrollment not saved")
        enrollment = Enrollment(
            server=server.rstrip("/"), agent_id=answer["agent_id"],
            signer_public_key=signer_key, status=answer["status"],
            interval=int(answer.get("interval", 60)),
            inventory_interval=int(answer.get("inventory_interval", 3600)),
            insecure=insecure,
        )
        self.state.save_enrollment(enrollment)
        log.info("enrolled as %s (%s)", enrollment.agent_id, enrollment.status)
        return enrollment

    def _enrollment(self) -> Enrollment:
        enrollment = self.state.enrollment()
        if enrollment is None:
            raise NotEnrolled("this agent is not enrolled: run `watchkeeper-agent enroll`")
        return enrollment

    # --- collection -----------------------------------------------------------------------
    def _spool(self, kind: str, body: dict[str, Any]) -> int:
        seq = self.state.take_seq()
        dropped = self.spool.put(seq, kind, {"seq": seq, "kind": kind,
                                             "created_at": time.time(), **body})
        if dropped:
            counters = self.state.counters()
            for name, count in dropped.items():
                counters["dropped"][name] = counters["dropped"].get(name, 0) + count
            self.state.save_counters(counters)
            log.warning("spool full: dropped %s", dropped)
        return seq

    def collect_metrics(self) -> int:
        return self._spool("metrics", {"metrics": {"ts": time.time(),
                                                    "values": self.collector.metrics()}})

    def collect_inventory(self) -> int | None:
        """Spool the sections whose hash differs from what the server acknowledged."""
        sections = self.collector.inventory()
        hashes = {name: section_hash(value) for name, value in sections.items()
                  if name in INVENTORY_SECTIONS}
        counters = self.state.counters()
        acked = counters["acked_hashes"]
        changed = {name: sections[name] for name, h in hashes.items() if acked.get(name) != h}
        counters["last_inventory"] = time.time()
        self.state.save_counters(counters)
        if not changed and acked:
            return None
        return self._spool("inventory", {"inventory": {"hashes": hashes, "sections": changed}})

    # --- sending --------------------------------------------------------------------------
    def flush(self) -> dict[str, Any]:
        """Send spooled batches oldest first. Returns a summary; commands received are run
        and their results spooled (and sent on the next flush)."""
        enrollment = self._enrollment()
        key = self.state.load_key()
        transport = Transport(enrollment.server, timeout=self.timeout,
                              insecure=enrollment.insecure)
        sent, commands, outcome = 0, [], "ok"
        self.report_interrupted()
        for entry in self.spool.entries():
            batch = self.spool.load(entry)
            counters = self.state.counters()
            batch["dropped"] = dict(counters["dropped"])
            batch["agent_version"] = __version__
            try:
                answer = transport.request("POST", CHECKIN_PATH, batch, key=key,
                                           agent_id=enrollment.agent_id)
            except Unreachable as exc:
                outcome = "unreachable"
                self._note_error(f"server unreachable: {exc}")
                break
            except Refused as exc:
                code = exc.body.get("code", "")
                if exc.status == 400 or code == "invalid":
                    # The server will never accept this batch; keep the queue moving.
                    log.error("server rejected batch %s: %s", entry.seq, exc)
                    self.spool.remove(entry)
                    self._note_error(f"batch {entry.seq} rejected: {exc}")
                    continue
                outcome = code or f"refused-{exc.status}"
                self._note_status(code)
                self._note_error(f"refused: {exc}")
                break
            self.spool.remove(entry)
            sent += 1
            counters = self.state.counters()
            counters["acked_hashes"] = answer.get("inventory_hashes", counters["acked_hashes"])
            counters["last_checkin"] = time.time()
            counters["last_error"] = None
            self.state.save_counters(counters)
            self._apply_settings(enrollment, answer)
            commands.extend(answer.get("commands") or [])
        ran = self.run_commands(commands, enrollment)
        return {"sent": sent, "outcome": outcome, "commands": ran,
                "spooled": len(self.spool.entries())}

    def run_commands(self, commands: list[dict[str, Any]], enrollment: Enrollment) -> int:
        seen: set[str] = set()
        results = []
        for envelope in commands:
            if not isinstance(envelope, dict) or envelope.get("id") in seen:
                continue
            seen.add(str(envelope.get("id")))
            result = execute(envelope, state=self.state, agent_id=enrollment.agent_id)
            # Spooled one by one, each as soon as it is known: then the journal forgets it.
            self._spool("results", {"results": [result]})
            self.state.journal_finish(result["id"])
            results.append(result)
        return len(results)

    def report_interrupted(self) -> int:
        """Spool an "interrupted" result, with the output that arrived, for every command an
        earlier agent process was running when it ended (commands.interrupted_results)."""
        results = interrupted_results(self.state)
        for result in results:
            log.warning("command %s was interrupted by an agent restart; reporting it",
                        result["id"])
            self._spool("results", {"results": [result]})
            self.state.journal_finish(result["id"])
        return len(results)

    def _apply_settings(self, enrollment: Enrollment, answer: dict[str, Any]) -> None:
        changed = False
        for field in ("interval", "inventory_interval", "status"):
            if field in answer and getattr(enrollment, field) != answer[field]:
                setattr(enrollment, field, answer[field])
                changed = True
        if changed:
            self.state.save_enrollment(enrollment)

    def _note_status(self, code: str) -> None:
        if code in ("pending", "revoked", "rejected", "unknown_agent"):
            enrollment = self._enrollment()
            enrollment.status = code
            self.state.save_enrollment(enrollment)

    def _note_error(self, message: str) -> None:
        counters = self.state.counters()
        counters["last_error"] = message
        self.state.save_counters(counters)
        log.warning(message)

    def server_status(self) -> dict[str, Any]:
        enrollment = self._enrollment()
        transport = Transport(enrollment.server, timeout=self.timeout,
                              insecure=enrollment.insecure)
        return transport.request("POST", STATUS_PATH, {}, key=self.state.load_key(),
                                 agent_id=enrollment.agent_id)

    # --- loops ----------------------------------------------------------------------------
    def run_once(self, *, inventory: bool | None = None) -> dict[str, Any]:
        enrollment = self._enrollment()
        self.collect_metrics()
        due = time.time() - self.state.counters()["last_inventory"] >= (
            enrollment.inventory_interval)
        if inventory if inventory is not None else due:
            self.collect_inventory()
        summary = self.flush()
        if summary["commands"]:
            # Report results now rather than a whole interval later.
            second = self.flush()
            summary["sent"] += second["sent"]
            summary["outcome"] = second["outcome"]
            summary["spooled"] = second["spooled"]
        return summary

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Until `stop` is set (the CLI sets it on SIGTERM/SIGINT); waits on the event, so
        a stop request ends the loop at once rather than after the current interval."""
        stop = stop or threading.Event()
        enrollment = self._enrollment()
        log.info("agent %s running against %s", enrollment.agent_id, enrollment.server)
        next_metrics = time.monotonic() + random.uniform(0, min(enrollment.interval, 10))
        next_inventory = time.monotonic() + random.uniform(0, 30)
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_inventory:
                try:
                    self.collect_inventory()
                except Exception:
                    log.exception("inventory collection failed")
                enrollment = self._enrollment()
                next_inventory = now + enrollment.inventory_interval * random.uniform(0.9, 1.1)
            if now >= next_metrics:
                try:
                    self.collect_metrics()
                    summary = self.flush()
                    if summary["commands"]:
                        self.flush()
                except NotEnrolled:
                    raise
                except Exception:
                    log.exception("check-in failed")
                enrollment = self._enrollment()
                next_metrics = now + enrollment.interval * random.uniform(0.9, 1.1)
            stop.wait(max(0.2, min(next_metrics, next_inventory) - time.monotonic()))

    def status(self) -> dict[str, Any]:
        enrollment = self.state.enrollment()
        counters = self.state.counters()
        entries = self.spool.entries()
        return {
            "enrolled": enrollment is not None,
            "server": enrollment.server if enrollment else None,
            "agent_id": enrollment.agent_id if enrollment else None,
            "status": enrollment.status if enrollment else None,
            "last_checkin": counters["last_checkin"],
            "last_error": counters["last_error"],
            "spooled_batches": {k: sum(1 for e in entries if e.kind == k) for k in KINDS},
            "spool_bytes": sum(e.size for e in entries),
            "dropped": counters["dropped"],
            "next_seq": counters["next_seq"],
        }
