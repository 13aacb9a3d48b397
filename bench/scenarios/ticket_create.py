"""ticket_create: new tickets per second through the two busiest doors — the REST API
(`POST /api/v1/tickets/` with a personal API token: validation, priority matrix, routing
rules, status history, timeline entry, audit row, ticket.created event and the client's
notification queued in the outbox, all in one transaction) and email (a real
`watchkeeper mail-in` subprocess: SMTP session, MIME parsing, loop and rate checks, sender
matched to the client by its registered domain, the same ticket creation, then the 250 reply
once committed). Every sender and subject is unique, so each message is a new ticket; after
the run the tickets in the database are counted against the ones acknowledged.

Run with `python -m bench.scenarios.ticket_create [--db sqlite|postgres|both]` (unique
POSTs and SMTP need their own load driver; `python -m bench run` only replays fixed GETs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import smtplib
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from bench.harness import (
    BASELINE,
    HOST,
    PG_ADMIN_URL,
    RESULTS_DIR,
    BenchError,
    LoadResult,
    Peaks,
    Scenario,
    Server,
    Target,
    bench_env,
    database,
    drive,
    machine_lock,
    merge_loads,
    python_cmd,
    read_response,
    run_step,
    seed_in_subprocess,
    summarize,
    versions,
    write_standalone_docs,
)

TICKETS_PATH = "/api/v1/tickets/"
API_TARGET = Target("POST /api/v1/tickets/ (new ticket, API token)", TICKETS_PATH,
                    expect_status=201)
SMTP_TARGET = Target("SMTP to `watchkeeper mail-in` (new ticket per message)", "smtp")
CLIENT_DOMAIN = "bench-client.test"


class TicketCreate(Scenario):
    name = "ticket_create"
    description = __doc__

    def seed(self) -> dict:
        from watchkeeper.core import accounts
        from watchkeeper.core import actions as core_actions
        from watchkeeper.core.choices import Role, TokenScope
        from watchkeeper.helpdesk.models import ClientEmailDomain

        owner, _ = accounts.create_user(actor=None, email="owner@bench.test", role=Role.OWNER,
                                        name="Bench Owner")
        client = core_actions.create_client(actor=owner, name="Bench Client Ltd")
        core_actions.create_object(actor=owner, model=ClientEmailDomain, client=client,
                                   domain=CLIENT_DOMAIN)
        tech, _ = accounts.create_user(actor=owner, email="tech@bench.test",
                                       role=Role.TECHNICIAN, name="Bench Technician")
        tech.assigned_clients.set([client])
        _, token = accounts.create_token(actor=tech, user=tech, name="ticket benchmark",
                                         scope=TokenScope.WRITE)
        return {"token": token, "client": client.pk}

    def targets(self, seeded: dict) -> list[Target]:
        raise BenchError("ticket_create needs its own driver: "
                         "python -m bench.scenarios.ticket_create")


SCENARIO = TicketCreate()


class MailIn(Server):
    """`watchkeeper mail-in` in its own process group; ready when it answers SMTP."""

    def __init__(self, env: dict[str, str], log_path: Path):
        super().__init__(env, log_path)
        self.command = python_cmd("watchkeeper.cli", "mail-in", "--host", HOST, "--port",
                                  str(self.port))

    def _wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"mail-in exited with {self.proc.returncode}:\n"
                                 f"{self.log_tail()}")
            with contextlib.suppress(OSError, smtplib.SMTPException):
                with smtplib.SMTP(HOST, self.port, timeout=5) as smtp:
                    if smtp.noop()[0] == 250:
                        return
            time.sleep(0.2)
        raise BenchError(f"mail-in not answering SMTP after {timeout:g}s:\n{self.log_tail()}")


class Sequence:
    """Unique numbers shared by the drivers and the count of acknowledged tickets."""

    def __init__(self):
        self._next = itertools.count(1)
        self._lock = threading.Lock()
        self.created = Counter()

    def take(self) -> int:
        return next(self._next)

    def done(self, kind: str) -> None:
        with self._lock:
            self.created[kind] += 1


def _api_request(port: int, token: str, client_id: int, n: int) -> bytes:
    body = json.dumps({"client": client_id, "subject": f"API bench ticket {n}",
                       "description": "Printer on floor 2 shows error 49.",
                       "requester_email": f"api{n}@{CLIENT_DOMAIN}", "impact": "medium",
                       "urgency": "high"}, separators=(",", ":")).encode()
    head = (f"POST {TICKETS_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


async def drive_api(port: int, token: str, client_id: int, seq: Sequence, *,
                    concurrency: int, duration: float) -> LoadResult:
    latencies: list[float] = []
    statuses: Counter = Counter()
    state = {"errors": 0}
    clock = time.perf_counter
    deadline = clock() + duration

    async def connection() -> None:
        reader = writer = None
        while clock() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                request = _api_request(port, token, client_id, seq.take())
                started = clock()
                writer.write(request)
                status, body, reusable = await read_response(reader)
                elapsed = clock() - started
            except (OSError, asyncio.IncompleteReadError, ValueError, BenchError) as exc:
                statuses[type(exc).__name__] += 1
                state["errors"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            statuses[status] += 1
            if status == 201 and b'"reference"' in body:
                latencies.append(elapsed)
                seq.done("api")
            else:
                state["errors"] += 1
            if not reusable:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    cpu_before, started = time.process_time(), clock()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return LoadResult(latencies=latencies, errors=state["errors"], elapsed=clock() - started,
                      statuses=statuses, client_cpu=time.process_time() - cpu_before)


def _message(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Bench User {n} <user{n}@{CLIENT_DOMAIN}>"
    msg["To"] = "help@msp.test"
    msg["Subject"] = f"Mail bench ticket {n}"
    msg["Message-ID"] = make_msgid(idstring=f"bench{n}", domain=CLIENT_DOMAIN)
    msg.set_content("Hello,\n\nthe shared drive is not mapped on my laptop since this "
                    "morning.\n\nRegards\n")
    return msg


def drive_smtp(port: int, seq: Sequence, *, concurrency: int, duration: float) -> LoadResult:
    """`concurrency` SMTP sessions, one message per transaction (MAIL, RCPT, DATA), each
    timed from MAIL FROM to the 250 after DATA (which mail-in sends once committed)."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    state = {"errors": 0}
    clock = time.perf_counter
    deadline = clock() + duration

    def session() -> None:
        smtp = None
        while clock() < deadline:
            n = seq.take()
            msg = _message(n)
            try:
                if smtp is None:
                    smtp = smtplib.SMTP(HOST, port, timeout=60)
                started = clock()
                refused = smtp.send_message(msg)
                elapsed = clock() - started
            except (OSError, smtplib.SMTPException) as exc:
                with lock:
                    statuses[type(exc).__name__] += 1
                    state["errors"] += 1
                if smtp is not None:
                    with contextlib.suppress(OSError, smtplib.SMTPException):
                        smtp.close()
                smtp = None
                continue
            with lock:
                if refused:
                    statuses["refused"] += 1
                    state["errors"] += 1
                else:
                    statuses[250] += 1
                    latencies.append(elapsed)
            if not refused:
                seq.done("email")
        if smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()

    cpu_before, started = time.process_time(), clock()
    threads = [threading.Thread(target=session) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(latencies=latencies, errors=state["errors"], elapsed=clock() - started,
                      statuses=statuses, client_cpu=time.process_time() - cpu_before)


def stored_tickets(env: dict[str, str]) -> dict[str, int]:
    out = run_step(python_cmd(
        "watchkeeper.cli", "shell", "-c",
        "import json;from django.db.models import Count;"
        "from watchkeeper.helpdesk.models import Ticket, InboundMessage;"
        "rows=dict(Ticket.objects.values_list('source').annotate(n=Count('id')));"
        "rows['inbound_not_ticketed']=InboundMessage.objects.count();"
        "print(json.dumps(rows))"), env, "count tickets")
    return json.loads(out.strip().splitlines()[-1])


def run_db(db: str, args) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix=f"wk-bench-tickets-{db}-"))
    (data_dir / "static").mkdir()
    try:
        with database(db, data_dir, PG_ADMIN_URL) as url:
            # Each message comes from its own address; the per-sender rate limit is not
            # what is measured, but keep it from ever turning a message into "ignored".
            env = bench_env(data_dir, url, {"WATCHKEEPER_MAIL_SENDER_RATE": "1000000"})
            print(f"[{db}] migrate")
            run_step(python_cmd("watchkeeper.cli", "migrate", "--noinput", "--skip-checks"),
                     env, "migrate")
            print(f"[{db}] seed")
            seeded = seed_in_subprocess(SCENARIO.name, env)
            info = versions(env)
            seq = Sequence()
            pg_url = PG_ADMIN_URL if db == "postgres" else None
            with Server(env, data_dir / "server.log") as server, \
                    MailIn(env, data_dir / "mail-in.log") as mail_in:
                def run(key: str, duration: float) -> LoadResult:
                    if key == "base":
                        return asyncio.run(drive(server.port, BASELINE,
                                                 concurrency=args.concurrency,
                                                 duration=duration, max_requests=10**9))
                    if key == "api":
                        return asyncio.run(drive_api(server.port, seeded["token"],
                                                     seeded["client"], seq,
                                                     concurrency=args.concurrency,
                                                     duration=duration))
                    return drive_smtp(mail_in.port, seq, concurrency=args.smtp_sessions,
                                      duration=duration)

                for key in ("api", "email", "base"):
                    run(key, args.warmup)
                empty = LoadResult(latencies=[], errors=0, elapsed=0.0)
                loads = {key: (empty, 0.0, 0, 0) for key in ("base", "api", "email")}
                conns: dict[str, int] = {}
                window = args.duration / args.rounds
                for _ in range(args.rounds):
                    for key in ("base", "api", "email"):
                        proc = mail_in if key == "email" else server
                        cpu = proc.cpu_seconds()
                        with Peaks(proc, pg_url) as peaks:
                            load = run(key, window)
                        if peaks.db_connections is not None:
                            conns[key] = max(conns.get(key, 0), peaks.db_connections)
                        prev = loads[key]
                        loads[key] = (merge_loads(prev[0], load),
                                      prev[1] + proc.cpu_seconds() - cpu,
                                      max(prev[2], peaks.rss), max(prev[3], peaks.fds))
                if mail_in.proc.poll() is not None or server.proc.poll() is not None:
                    raise BenchError("a server died during the run")
            rows = []
            base = summarize(BASELINE, loads["base"][0], server_cpu=loads["base"][1],
                             server_rss=loads["base"][2], server_fds=loads["base"][3],
                             baseline_rps=None, db_connections=conns.get("base"))
            rows.append(base)
            for key, target in (("api", API_TARGET), ("email", SMTP_TARGET)):
                rows.append(summarize(target, loads[key][0], server_cpu=loads[key][1],
                                      server_rss=loads[key][2], server_fds=loads[key][3],
                                      baseline_rps=base.rps if key == "api" else None,
                                      db_connections=conns.get(key)))
            stored = stored_tickets(env)
            meta = {"benchmark": SCENARIO.name, "db": db, "db_version": info["db_version"],
                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "cores": os.cpu_count(), "loadavg": os.getloadavg()[0],
                    "python": info.get("python", ""), "django": info["django"],
                    "duration": args.duration, "rounds": args.rounds, "warmup": args.warmup,
                    "concurrency": args.concurrency, "smtp_sessions": args.smtp_sessions,
                    "max_requests": 0, "env": {},
                    "server": "watchkeeper web --workers 1` and `watchkeeper mail-in",
                    "acknowledged": dict(seq.created),
                    "stored": {"api": stored.get("api", 0), "email": stored.get("email", 0)},
                    "inbound_not_ticketed": stored.get("inbound_not_ticketed", 0)}
            result = {"meta": meta, "rows": [asdict(r) for r in rows]}
            for kind in ("api", "email"):
                if meta["stored"][kind] != meta["acknowledged"].get(kind, 0):
                    raise BenchError(f"{kind}: {meta['acknowledged'].get(kind, 0)} tickets "
                                     f"acknowledged but {meta['stored'][kind]} stored")
            return result
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def render(result: dict) -> str:
    from bench.harness import render_run

    meta = result["meta"]
    meta.setdefault("python", "")
    text = render_run(result).replace(" or 0 requests per target", " per target")
    # The SMTP row is not the baseline: say so instead of "1.00 (baseline)".
    text = "\n".join(line.replace("| 1.00 (baseline) |", "| — |")
                     if line.startswith(f"| {SMTP_TARGET.label} ") else line
                     for line in text.splitlines())
    ack, stored = meta["acknowledged"], meta["stored"]
    return (f"{text}\n\nAPI over {meta['concurrency']} keep-alive connections, email over "
            f"{meta['smtp_sessions']} SMTP sessions (one message per transaction; the SMTP "
            f"row's CPU, RSS and FDs are the `mail-in` process's). Tickets acknowledged "
            f"(warm-up included) and found in the database afterwards: API "
            f"{ack.get('api', 0):,} / {stored['api']:,}, email {ack.get('email', 0):,} / "
            f"{stored['email']:,}; {meta['inbound_not_ticketed']} messages ignored or "
            f"quarantined.")


def main(argv: list[str] | None = None) -> int:
    import platform

    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.ticket_create")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds per target, split over the rounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=4, help="API connections")
    parser.add_argument("--smtp-sessions", type=int, default=4)
    parser.add_argument("--tag", default="", help="keep results apart (not rendered)")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs-only", action="store_true",
                        help="render the stored results into docs/benchmarks.md, run nothing")
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for db in ([] if args.docs_only else
               ["sqlite", "postgres"] if args.db == "both" else [args.db]):
        with machine_lock():
            result = run_db(db, args)
        result["meta"]["python"] = platform.python_version()
        result["meta"]["machine"] = f"{platform.system()} {platform.machine()}"
        stem = f"{SCENARIO.name}-{db}" + (f"-{args.tag}" if args.tag else "")
        (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(result, indent=2))
        print(render(result))
    if args.write_docs or args.docs_only:
        write_standalone_docs(SCENARIO.name, "ticket_create", SCENARIO.description, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
