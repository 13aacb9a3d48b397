"""Issue 19, finding 6: a command cut by an agent restart is reported as "interrupted —
outcome unknown" with whatever output arrived, never as "refused: replayed nonce"."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from watchkeeper_agent.commands import execute
from watchkeeper_agent.protocol import b64e
from watchkeeper_agent.service import Agent
from watchkeeper_agent.state import Enrollment, State

COMMAND_ID = "0b6c3c39-6a1e-4a57-9d44-4f0d3c1a2b3c"


def signed_envelope(key, body: str) -> dict:
    payload = {"v": 1, "id": COMMAND_ID, "agent": "agent-1", "nonce": "n" * 32,
               "expires_at": int(time.time()) + 600, "language": "bash", "body": body,
               "args": []}
    text = json.dumps(payload)
    return {"id": COMMAND_ID, "payload": text,
            "signature": base64.b64encode(key.sign(text.encode())).decode()}


def test_a_command_cut_by_an_agent_kill_is_reported_interrupted_with_its_output(tmp_path):
    # given an enrolled agent state and a signed command that prints, then runs long
    key = Ed25519PrivateKey.generate()
    state = State(tmp_path / "state")
    state.ensure()
    state.save_enrollment(Enrollment(
        server="http://127.0.0.1:9", agent_id="agent-1", status="approved", interval=60,
        inventory_interval=3600,
        signer_public_key=b64e(key.public_key().public_bytes_raw())))
    envelope = signed_envelope(key, "echo partial output; echo oops >&2; sleep 120")

    # when an agent process runs it and is killed -9 while it runs
    runner = subprocess.Popen([sys.executable, "-c", (
        "import json, sys\n"
        "from watchkeeper_agent.commands import execute\n"
        "from watchkeeper_agent.state import State\n"
        f"execute(json.loads(sys.argv[1]), state=State({str(state.dir)!r}), "
        "agent_id='agent-1')\n"), json.dumps(envelope)])
    out_file = state.journal_dir / f"{COMMAND_ID}.out"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and b"partial" not in (
            out_file.read_bytes() if out_file.exists() else b""):
        time.sleep(0.05)
    runner.kill()
    runner.wait()

    # then the next agent process reports it as interrupted, with the output that arrived
    service = Agent(state)
    assert service.report_interrupted() == 1
    [entry] = service.spool.entries()
    [result] = service.spool.load(entry)["results"]
    assert result["id"] == COMMAND_ID
    assert result["status"] == "interrupted"
    assert result["exit_code"] is None
    assert result["stdout"] == "partial output\n"
    assert result["stderr"] == "oops\n"
    assert "outcome unknown" in result["reason"]
    # and only once: the journal forgot it
    assert service.report_interrupted() == 0
    # and the command is still never run a second time
    assert execute(envelope, state=state, agent_id="agent-1")["reason"] == "replayed nonce"


def test_the_server_stores_an_interrupted_result_as_interrupted():
    from watchkeeper.agents.checkin.ingest import _RESULT_STATUS
    from watchkeeper.agents.checkin.validation import validate_checkin
    from watchkeeper.agents.choices import FINISHED_COMMAND_STATES, CommandStatus

    batch = validate_checkin({"seq": 1, "results": [
        {"id": COMMAND_ID, "status": "interrupted", "exit_code": None,
         "stdout": "partial", "stderr": "", "reason": "agent restarted"}]})
    assert batch["results"][0]["status"] == "interrupted"
    assert _RESULT_STATUS["interrupted"] == CommandStatus.INTERRUPTED
    assert CommandStatus.INTERRUPTED in FINISHED_COMMAND_STATES
    assert CommandStatus.INTERRUPTED.label == "Interrupted — outcome unknown"
