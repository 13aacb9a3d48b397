"""Measure the agent's CPU and memory in its service loop against a real local server.

    .venv/bin/python agent/tools/measure_footprint.py --minutes 10 [--interval 60]

Starts a throw-away server (SQLite, temporary data directory): migrate, signer key, a client
and site, an enrollment token through `watchkeeper enrollment-token create --auto-approve`;
then enrolls the agent and runs `watchkeeper-agent run` for the given time, sampling the
agent process (psutil) every second. Prints JSON: CPU seconds used, average CPU %, CPU ms
per check-in, peak and final RSS, check-ins sent. The first inventory collection (package
list, `apt-get -s upgrade`) happens in the first minute and is reported apart.
"""

# ruff: noqa: S603  (fixed argument lists of our own commands)
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", type=int, default=60)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="wk-footprint-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")}
    env.update({"WATCHKEEPER_DATA_DIR": str(data / "server"),
                "WATCHKEEPER_BASE_URL": f"http://127.0.0.1:{port}",
                "WATCHKEEPER_AGENT_INTERVAL": str(args.interval),
                "WATCHKEEPER_TASKS_URL": "immediate"})
    wk = [str(BIN / "watchkeeper")]

    def step(*argv: str) -> str:
        return subprocess.run([*wk, *argv], env=env, check=True, capture_output=True,
                              text=True).stdout

    step("migrate", "--noinput")
    step("signer", "--init")
    step("shell", "-c", "from watchkeeper.core import actions;"
         "c = actions.create_client(actor=None, name='Footprint Ltd');"
         "actions.create_site(actor=None, client=c, name='Lab')")
    token = step("enrollment-token", "create", "--client", "Footprint Ltd", "--site", "Lab",
                 "--auto-approve").strip()
    server = subprocess.Popen([*wk, "web", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    agent_proc = None
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        state = data / "agent"
        agent = [str(BIN / "watchkeeper-agent"), "--state-dir", str(state)]
        subprocess.run([*agent, "enroll", "--server", f"http://127.0.0.1:{port}",
                        "--token", token], check=True, capture_output=True)
        agent_proc = subprocess.Popen([*agent, "run"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        proc = psutil.Process(agent_proc.pid)
        started = time.monotonic()
        samples = []
        first_minute_cpu = None
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(1)
            times = proc.cpu_times()
            cpu = times.user + times.system
            # Child processes (dpkg-query, apt-get, systemctl) are the agent's work too.
            cpu += times.children_user + times.children_system
            samples.append((time.monotonic() - started, cpu, proc.memory_info().rss))
            if first_minute_cpu is None and samples[-1][0] >= 60:
                first_minute_cpu = cpu
        status = json.loads(subprocess.run([*agent, "status", "--offline"], check=True,
                                           capture_output=True, text=True).stdout)
        elapsed, cpu, rss = samples[-1]
        steady_cpu = cpu - (first_minute_cpu or 0)
        steady_time = elapsed - 60
        checkins = status["next_seq"] - 1
        print(json.dumps({
            "minutes": round(elapsed / 60, 1), "interval_s": args.interval,
            "batches_sent": checkins,
            "cpu_seconds_total": round(cpu, 2),
            "cpu_seconds_first_minute_with_inventory": round(first_minute_cpu or 0, 2),
            "steady_cpu_percent": round(100 * steady_cpu / steady_time, 3),
            "steady_cpu_ms_per_minute": round(1000 * steady_cpu / (steady_time / 60), 1),
            "rss_peak_mb": round(max(s[2] for s in samples) / 2**20, 1),
            "rss_final_mb": round(rss / 2**20, 1),
            "spooled_left": status["spooled_batches"],
        }, indent=2))
    finally:
        for child in (agent_proc, server):
            if child is None:
                continue
            child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
