"""A simulated fleet that talks to a running server exactly as enrolled agents do: each
device has its own Ed25519 key, enrolls with an enrollment token over HTTP, and posts
signed check-in batches (metrics, inventory, command results) to /agent/v1/checkin — the
real agent API and ingest path, nothing written behind the server's back.

Used by the demo (`watchkeeper up --demo`, `watchkeeper demo --devices N --server URL`)
and by the benchmarks (bench/). Keys derive from a seed kept in the state file, so a
restarted fleet continues as the same agents.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from watchkeeper.agents.protocol import canonical_request
from watchkeeper.core.canonical import canonical_hash

from .profiles import Profile

log = logging.getLogger(__name__)

ENROLL = "/agent/v1/enroll"
CHECKIN = "/agent/v1/checkin"
AGENT_VERSION = "0.1.0-sim"


def key_for(seed: str, hostname: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"{seed}:agent-key:{hostname}".encode()).digest())


def public_b64(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
                            ).decode()


@dataclass
class SimAgent:
    profile: Profile
    key: Ed25519PrivateKey
    agent_id: str = ""
    seq: int = 0
    backfilled_until: float = 0.0   # unix time of the oldest history sample sent
    checkins: int = 0
    offline: bool = False

    def headers(self, path: str, body: bytes) -> dict[str, str]:
        ts, nonce = int(time.time()), secrets.token_hex(16)
        message = canonical_request(method="POST", path=path, timestamp=ts, nonce=nonce,
                                    body=body, agent_id=self.agent_id)
        return {"Content-Type": "application/json", "User-Agent": "watchkeeper-agent-sim/1",
                "X-WK-Agent": self.agent_id, "X-WK-Timestamp": str(ts), "X-WK-Nonce": nonce,
                "X-WK-Signature": base64.b64encode(self.key.sign(message)).decode()}

    def batch(self, **body: Any) -> dict[str, Any]:
        self.seq += 1
        return {"seq": self.seq, "agent_version": AGENT_VERSION, "dropped": {}, **body}


@dataclass
class Fleet:
    """The agents of `profiles`, against `server`. `token_for(profile)` returns a raw
    enrollment token for the profile's client and site (the caller creates them)."""

    server: str
    profiles: list[Profile]
    state_path: Path | None = None
    token_for: Callable[[Profile], str] | None = None
    history_hours: int = 24
    history_step: int = 1800
    seed: str = ""
    agents: list[SimAgent] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        state = self._load_state()
        self.seed = self.seed or state.get("seed") or secrets.token_hex(16)
        known = state.get("agents", {})
        self.agents = []
        for p in self.profiles:
            saved = known.get(p.hostname, {})
            self.agents.append(SimAgent(p, key_for(self.seed, p.hostname),
                                        agent_id=saved.get("agent_id", ""),
                                        seq=int(saved.get("seq", 0)),
                                        backfilled_until=float(saved.get("backfilled", 0))))
        self.http = httpx.Client(base_url=self.server.rstrip("/"), timeout=30)

    # --- state ----------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        if self.state_path and self.state_path.exists():
            try:
                return json.loads(self.state_path.read_text())
            except ValueError:
                log.warning("demo fleet state %s unreadable: starting afresh", self.state_path)
        return {}

    def save_state(self) -> None:
        if not self.state_path:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        data = {"seed": self.seed, "agents": {
            a.profile.hostname: {"agent_id": a.agent_id, "seq": a.seq,
                                 "backfilled": a.backfilled_until}
            for a in self.agents if a.agent_id}}
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.chmod(0o600)
        tmp.replace(self.state_path)

    # --- protocol -------------------------------------------------------------------------
    def _post(self, agent: SimAgent, body: dict[str, Any]) -> dict[str, Any] | None:
        raw = json.dumps(body, separators=(",", ":")).encode()
        re_enrolled = False
        for _attempt in range(3):
            try:
                resp = self.http.post(CHECKIN, content=raw, headers=agent.headers(CHECKIN, raw))
            except httpx.HTTPError as exc:
                self.counters["unreachable"] += 1
                log.debug("check-in of %s failed: %s", agent.profile.hostname, exc)
                return None
            if resp.status_code == 503:
                self.counters["busy"] += 1
                time.sleep(min(float(resp.headers.get("Retry-After") or 1), 5))
                continue
            self.counters[f"http_{resp.status_code}"] += 1
            if (resp.status_code == 401 and "unknown_agent" in resp.text
                    and self.token_for is not None and not re_enrolled):
                # The state file outlived its database (a new or reset database): this
                # server never heard of the agent, so it enrolls again and re-sends.
                log.info("%s is unknown to the server: enrolling again",
                         agent.profile.hostname)
                re_enrolled = True
                agent.agent_id, agent.seq, agent.backfilled_until = "", 0, 0.0
                if not self.enroll(agent):
                    return None
                agent.seq += 1
                body = {**body, "seq": agent.seq}
                raw = json.dumps(body, separators=(",", ":")).encode()
                continue
            if resp.status_code != 200:
                log.warning("check-in of %s refused: %s %s", agent.profile.hostname,
                            resp.status_code, resp.text[:200])
                return None
            agent.checkins += 1
            return resp.json()
        return None

    def enroll(self, agent: SimAgent) -> bool:
        if agent.agent_id:
            return True
        if self.token_for is None:
            raise RuntimeError("no enrollment token source for a new agent")
        try:
            resp = self.http.post(ENROLL, json={
                "token": self.token_for(agent.profile), "public_key": public_b64(agent.key),
                "facts": agent.profile.facts(), "agent_version": AGENT_VERSION})
        except httpx.HTTPError as exc:
            self.counters["unreachable"] += 1
            log.warning("enrollment of %s failed: %s", agent.profile.hostname, exc)
            return False
        if resp.status_code not in (200, 201):
            self.counters["enroll_refused"] += 1
            log.warning("enrollment of %s refused: %s %s", agent.profile.hostname,
                        resp.status_code, resp.text[:200])
            return False
        agent.agent_id = resp.json()["agent_id"]
        self.counters["enrolled"] += 1
        return True

    def send_inventory(self, agent: SimAgent) -> None:
        sections = agent.profile.inventory()
        hashes = {name: canonical_hash(v) for name, v in sections.items()}
        self._answer(agent, self._post(agent, agent.batch(
            kind="inventory", inventory={"hashes": hashes, "sections": sections})))

    def send_metrics(self, agent: SimAgent, at: float | None = None) -> None:
        at = at or time.time()
        answer = self._post(agent, agent.batch(kind="metrics", metrics={
            "ts": at, "values": agent.profile.metrics(at)}))
        self._answer(agent, answer)

    def _answer(self, agent: SimAgent, answer: dict[str, Any] | None) -> None:
        """Commands handed out in a check-in answer: report each as run (the simulated
        device "runs" the script and answers with plausible output)."""
        commands = (answer or {}).get("commands") or []
        results = [{"id": str(c.get("id")), "status": "ok", "exit_code": 0,
                    "stdout": f"{agent.profile.hostname}: done\n", "stderr": "",
                    "truncated": False, "duration_ms": 840}
                   for c in commands if isinstance(c, dict) and c.get("id")]
        if results:
            self.counters["command_results"] += len(results)
            self._post(agent, agent.batch(kind="results", results=results))

    # --- rounds ---------------------------------------------------------------------------
    def wait_ready(self, timeout: float = 120.0, stop: threading.Event | None = None) -> bool:
        """Until the server answers its liveness probe (it may still be starting)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            try:
                if self.http.get("/healthz").status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(1)
        return False

    def start(self) -> None:
        """Enroll whoever is new, send each device's inventory and a first reading."""
        for agent in self.agents:
            if self.stop.is_set():
                break
            if self.enroll(agent):
                self.send_inventory(agent)
                self.send_metrics(agent)
        self.save_state()

    def round(self) -> None:
        """One check-in of every device that is online (offline laptops stay silent)."""
        for agent in self.agents:
            if self.stop.is_set():
                break
            if agent.agent_id and not agent.profile.goes_offline:
                self.send_metrics(agent)

    def backfill(self, budget: int) -> int:
        """Send up to `budget` batches of history (the readings of the last
        `history_hours`, as a spool replays after an outage), newest first per device.
        Returns how many were sent; 0 when the history is complete."""
        now = time.time()
        oldest = now - self.history_hours * 3600
        sent = 0
        for agent in self.agents:
            if not agent.agent_id:
                continue
            at = (agent.backfilled_until or now) - self.history_step
            while at > oldest and sent < budget and not self.stop.is_set():
                self.send_metrics(agent, at)
                agent.backfilled_until = at
                at -= self.history_step
                sent += 1
            if sent >= budget:
                break
        return sent

    def run(self, stop: threading.Event, *, interval: float = 60.0,
            on_round: Callable[[Fleet], None] | None = None,
            on_start: Callable[[Fleet], None] | None = None) -> None:
        """Start, then a round every `interval` seconds until `stop`; history is sent
        between rounds, a slice at a time, so the present comes first."""
        while not self.wait_ready(stop=stop):
            if stop.is_set():
                return
            log.warning("server %s not answering yet: the demo fleet waits", self.server)
        self.stop = stop
        self.start()
        if on_start and not stop.is_set():
            on_start(self)
        next_round = time.monotonic() + interval
        while not stop.is_set():
            if time.monotonic() >= next_round:
                self.round()
                if on_round:
                    on_round(self)
                self.save_state()
                next_round = time.monotonic() + interval
            if not self.backfill(budget=50):
                stop.wait(max(0.5, next_round - time.monotonic()))
        self.save_state()
        self.http.close()
