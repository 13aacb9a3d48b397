"""Verify and run commands from the server.

A command runs only if: its signature verifies against the signer key pinned at enrollment,
it names this agent, it has not expired, and its nonce was never seen before. The nonce is
written to the ledger *before* the script starts, so a crash mid-run can never lead to a
second run. Parameters reach the script as argv entries, never through a shell string.

A running command is journalled (state.journal_start: its id, and files its output goes to
as it arrives). When the agent is killed mid-run, its next start reports that command as
"interrupted" with whatever output arrived (interrupted_results), instead of the server
re-sending it and hearing "replayed nonce".
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess  # noqa: S404 (argv lists only; shell=False everywhere)
import sys
import tempfile
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .protocol import b64d
from .state import State

log = logging.getLogger(__name__)

INTERPRETERS = {
    "bash": (["bash"], ".sh"),
    "sh": (["sh"], ".sh"),
    "python": ([sys.executable], ".py"),
    "powershell": (["pwsh", "-NoProfile", "-NonInteractive", "-File"], ".ps1"),
}
MAX_TIMEOUT = 3600
MAX_OUTPUT = 1024 * 1024


class Rejected(Exception):
    """The command failed verification and was not run."""


def verify(envelope: dict[str, Any], *, signer: Ed25519PublicKey, agent_id: str,
           now: float | None = None) -> dict[str, Any]:
    """The command's payload if every check passes; raises Rejected otherwise.
    The nonce ledger is checked by execute(), which must also record it."""
    payload_text = envelope.get("payload")
    signature = envelope.get("signature")
    if not isinstance(payload_text, str) or not signature or not isinstance(signature, str):
        raise Rejected("unsigned")
    try:
        signer.verify(b64d(signature), payload_text.encode("utf-8"))
    except (InvalidSignature, ValueError) as exc:
        raise Rejected("bad signature") from exc
    try:
        payload = json.loads(payload_text)
    except ValueError as exc:
        raise Rejected("payload is not JSON") from exc
    if not isinstance(payload, dict) or payload.get("v") != 1:
        raise Rejected("unknown command format")
    if payload.get("agent") != agent_id:
        raise Rejected("addressed to another agent")
    expires = payload.get("expires_at")
    if not isinstance(expires, int) or expires <= (now or time.time()):
        raise Rejected("expired")
    if not isinstance(payload.get("nonce"), str) or len(payload["nonce"]) < 16:
        raise Rejected("missing nonce")
    return payload


def _interpreter(language: str) -> tuple[list[str], str]:
    if language not in INTERPRETERS:
        raise Rejected(f"unsupported language {language!r}")
    argv, suffix = INTERPRETERS[language]
    if language == "powershell" and shutil.which("pwsh") is None:
        if shutil.which("powershell") is None:
            raise Rejected("powershell is not installed")
        argv = ["powershell", *argv[1:]]
    elif shutil.which(argv[0]) is None and not os.path.isabs(argv[0]):
        raise Rejected(f"{argv[0]} is not installed")
    return argv, suffix


def _cap(data: bytes, cap: int) -> tuple[str, bool]:
    truncated = len(data) > cap
    return data[:cap].decode("utf-8", errors="replace"), truncated


def _run(argv: list[str], *, cwd: str, timeout: int, stdout_path: str | None = None,
         stderr_path: str | None = None) -> tuple[int | None, bytes, bytes, str]:
    """Run in a session of its own so a timeout kills the whole process group: a script's
    background children would otherwise hold the output pipes open and hang the agent.

    With `stdout_path`/`stderr_path` (the journal's files) the output goes to files as it
    arrives, so whatever a script printed survives the agent being killed mid-run."""
    popen_kwargs: dict[str, Any] = {}
    if os.name == "posix":
        popen_kwargs["start_new_session"] = True
    else:
        popen_kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    if stdout_path is None or stderr_path is None:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,  # noqa: S603
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen_kwargs)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
            return proc.returncode, stdout, stderr, "ok"
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            try:
                stdout, stderr = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                stdout, stderr = b"", b""
            return None, stdout or b"", stderr or b"", "timeout"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,  # noqa: S603
                                stdout=out, stderr=err, **popen_kwargs)
        try:
            proc.wait(timeout=timeout)
            status, code = "ok", proc.returncode
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            status, code = "timeout", None
    return code, _read_head(stdout_path), _read_head(stderr_path), status


def _read_head(path: str, limit: int = MAX_OUTPUT + 1) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except FileNotFoundError:
        return b""


def _kill_tree(proc: subprocess.Popen) -> None:
    if os.name == "posix":
        import signal

        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    else:
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)],  # noqa: S603, S607
                       capture_output=True, check=False)
        proc.kill()


def execute(envelope: dict[str, Any], *, state: State, agent_id: str) -> dict[str, Any]:
    """Verify then run one command; always returns a result to report (ran or refused)."""
    command_id = str(envelope.get("id", ""))
    try:
        payload = verify(envelope, signer=state.signer_key(), agent_id=agent_id)
        if payload.get("id") != command_id:
            raise Rejected("envelope and payload name different commands")
        if not state.remember_nonce(payload["nonce"], payload["expires_at"]):
            raise Rejected("replayed nonce")
        argv, suffix = _interpreter(str(payload.get("language")))
        args = payload.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise Rejected("arguments must be a list of strings")
    except Rejected as exc:
        log.warning("refused command %s: %s", command_id, exc)
        return {"id": command_id, "status": "refused", "reason": str(exc)}

    timeout = min(max(int(payload.get("timeout") or 60), 1), MAX_TIMEOUT)
    cap = min(max(int(payload.get("output_cap") or 65536), 1024), MAX_OUTPUT)
    started = time.monotonic()
    # The journal: this command is running, and where its output goes. If the agent dies
    # before the result is spooled, the next start reports it as interrupted (journal.py).
    entry = state.journal_start(command_id, cap)
    with tempfile.TemporaryDirectory(prefix="wk-cmd-") as work:
        script = os.path.join(work, f"script{suffix}")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write(str(payload.get("body", "")))
        os.chmod(script, 0o700)
        exit_code, stdout, stderr, status = _run(
            [*argv, script, *args], cwd=work, timeout=timeout,
            stdout_path=str(entry.stdout_path), stderr_path=str(entry.stderr_path))
    out, out_cut = _cap(stdout, cap)
    err, err_cut = _cap(stderr, cap)
    log.info("ran command %s: status %s exit %s", command_id, status, exit_code)
    return {"id": command_id, "status": status, "exit_code": exit_code, "stdout": out,
            "stderr": err, "truncated": out_cut or err_cut,
            "duration_ms": int((time.monotonic() - started) * 1000)}


INTERRUPTED_REASON = ("the agent stopped while the command ran; outcome unknown (it was not "
                      "run again)")


def interrupted_results(state: State) -> list[dict[str, Any]]:
    """Results for commands the journal says were running when an earlier agent process
    ended (killed, crashed, rebooted): "interrupted", with whatever output had arrived.
    The journal entries stay until the caller has spooled these (state.journal_finish)."""
    results = []
    for entry in state.journal_orphans():
        out, out_cut = _cap(_read_head(str(entry.stdout_path)), entry.cap)
        err, err_cut = _cap(_read_head(str(entry.stderr_path)), entry.cap)
        results.append({"id": entry.command_id, "status": "interrupted", "exit_code": None,
                        "stdout": out, "stderr": err, "truncated": out_cut or err_cut,
                        "duration_ms": 0, "reason": INTERRUPTED_REASON})
    return results
