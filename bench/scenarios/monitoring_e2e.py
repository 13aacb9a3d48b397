"""monitoring_e2e: latency from a stored metric to the notification email, p50/p99, in one
process: a disk sample above the threshold is stored (the agent ingest's multi-row INSERT),
the agent-side evaluation runs (the scheduler's `monitoring.evaluate` job), the alert state
machine opens the alert and emits `alert.opened`, the outbox delivers it to the email
channel, and an aiosmtpd receiver on loopback takes the message; then the same for the
recovery. Every alert is matched to its message, so a duplicate or a missing one shows.
Baseline in the same process: one plain SMTP send (smtplib) to the same receiver.

In a deployment the scheduler intervals come on top (evaluation every 15 s, outbox sweep);
this measures the work, not the waiting.

Run with `python -m bench.scenarios.monitoring_e2e [--db sqlite|postgres] [--devices N]
[--rounds R] [--write-docs]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import smtplib
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from bench.harness import (
    PG_ADMIN_URL,
    RESULTS_DIR,
    database,
    machine_lock,
    percentile,
    write_standalone_docs,
)

NAME = "monitoring_e2e"
PG_DB = "watchkeeper_bench_e2e"
DEVICE = re.compile(r"bench-dev-(\d+)")


class Inbox:
    def __init__(self):
        self.lock = threading.Lock()
        self.received: list[tuple[float, str]] = []

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.append((time.perf_counter(), envelope.content.decode("utf-8",
                                                                               "replace")))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stats(values: list[float]) -> dict:
    values = sorted(values)
    return {"n": len(values), "p50_ms": round(percentile(values, 50) * 1000, 2),
            "p99_ms": round(percentile(values, 99) * 1000, 2),
            "max_ms": round(values[-1] * 1000, 2) if values else 0}


def run_db(db: str, args) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="wk-bench-e2e-"))
    port = _free_port()
    os.environ.update({"WATCHKEEPER_DATA_DIR": str(data_dir),
                       "DJANGO_SETTINGS_MODULE": "watchkeeper.settings",
                       "WATCHKEEPER_SMTP_HOST": "127.0.0.1",
                       "WATCHKEEPER_SMTP_PORT": str(port)})
    os.environ.pop("WATCHKEEPER_TASKS_URL", None)
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with database(db, data_dir, PG_ADMIN_URL, name=PG_DB) as url:
            os.environ["WATCHKEEPER_DATABASE_URL"] = url
            from django.db import connections

            try:
                return _measure(db, args, port, inbox)
            finally:
                connections.close_all()  # before the database is dropped
    finally:
        controller.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _measure(db: str, args, port: int, inbox: Inbox) -> dict:
    """Baseline and both paths on the database WATCHKEEPER_DATABASE_URL names."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.utils import timezone

    from watchkeeper.agents.checkin.writer import insert_samples
    from watchkeeper.core import actions as core_actions
    from watchkeeper.core import events
    from watchkeeper.inventory.models import Device
    from watchkeeper.monitoring import actions, evaluate
    from watchkeeper.monitoring.models import Alert

    client = core_actions.create_client(actor=None, name="Bench E2E Client")
    policy = actions.create_policy(actor=None, name="Servers")
    actions.add_check(actor=None, policy=policy, name="Disk space", kind="disk",
                      config={"warning": 80, "critical": 90})
    actions.assign_policy(actor=None, policy=policy, scope="global")
    actions.create_channel(actor=None, name="NOC", kind="email",
                           recipients=["noc@bench.test"])
    # A fresh set of devices per round: the same devices going up and down round after
    # round would (rightly) be flagged as flapping, and flapping sends nothing.
    fleets = [[Device.objects.create(client=client, name=f"bench-dev-{r:02d}{i:04d}")
               for i in range(args.devices)] for r in range(args.rounds)]
    # Baseline: plain SMTP sends to the same receiver.
    base = []
    for i in range(args.devices):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "b@bench.test", "n@bench.test", f"{i}"
        msg.set_content("baseline")
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(msg)
        base.append(time.perf_counter() - started)
    with inbox.lock:
        inbox.received.clear()

    def run_round(devices, value: float, expect: str) -> tuple[list[float], int]:
        stamps: dict[int, float] = {}
        for device in devices:
            insert_samples(device.pk, timezone.now(), {"disk.used_percent:/": value,
                                                        "disk.free_bytes:/": 2**34})
            stamps[device.pk] = time.perf_counter()
        evaluate.run_evaluation(timezone.now())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            events.dispatch_due(limit=5000)
            with inbox.lock:
                got = [m for m in inbox.received if expect in m[1]]
            if len(got) >= len(devices):
                break
            time.sleep(0.01)
        time.sleep(0.2)  # anything extra (a duplicate) would arrive now
        with inbox.lock:
            got = [m for m in inbox.received if expect in m[1]]
            inbox.received.clear()
        by_name = {d.name: d.pk for d in devices}
        latencies, seen = [], set()
        for at, content in got:
            match = DEVICE.search(content)
            pk = by_name.get(match.group(0)) if match else None
            if pk is None or pk in seen:
                continue
            seen.add(pk)
            latencies.append(at - stamps[pk])
        return latencies, len(got)

    opened, resolved, sent, expected = [], [], 0, 0
    for devices in fleets:
        lat, n = run_round(devices, 95.0, "CRITICAL")
        opened += lat
        sent += n
        lat, n = run_round(devices, 40.0, "resolved")
        resolved += lat
        sent += n
        expected += 2 * len(devices)
    from django.db import connection

    version = (connection.Database.sqlite_version if connection.vendor == "sqlite"
               else str(connection.cursor().connection.info.server_version))
    alerts = Alert.objects.count()
    connection.close()
    return {"meta": {"benchmark": NAME, "db": db, "db_version": version,
                     "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                     "cores": os.cpu_count(), "loadavg": round(os.getloadavg()[0], 2),
                     "python": platform.python_version(), "devices": args.devices,
                     "rounds": args.rounds},
            "rows": {"baseline: one smtplib send": _stats(base),
                     "metric stored → alert opened → email received": _stats(opened),
                     "metric recovered → alert resolved → email received":
                         _stats(resolved)},
            "messages": {"sent": sent, "expected": expected, "alerts": alerts}}


def render(result: dict) -> str:
    m, msgs = result["meta"], result["messages"]
    lines = [f"**{m['db']}** {m['db_version']}, {m['date']}, {m['cores']} cores (load "
             f"{m['loadavg']}), Python {m['python']}: {m['devices']} devices crossing the "
             f"threshold together, {m['rounds']} rounds of alert + recovery.", "",
             "| path | n | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|"]
    for label, s in result["rows"].items():
        lines.append(f"| {label} | {s['n']} | {s['p50_ms']:,} | {s['p99_ms']:,} | "
                     f"{s['max_ms']:,} |")
    lines += ["", f"{msgs['sent']:,} messages received for {msgs['expected']:,} expected "
                  f"(one alert and one recovery per device: equal means none missing and "
                  f"none doubled); {msgs['alerts']:,} alert rows. The devices of a round "
                  f"cross together and one dispatcher sends their messages one after "
                  f"another, so p50 is about half a round's work."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.monitoring_e2e")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs-only", action="store_true")
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if not args.docs_only:
        with machine_lock():
            result = run_db(args.db, args)
        (RESULTS_DIR / f"{NAME}-{args.db}.json").write_text(json.dumps(result, indent=2))
        print(render(result))
    if args.write_docs or args.docs_only:
        write_standalone_docs(NAME, "monitoring_e2e", __doc__, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
