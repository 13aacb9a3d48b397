"""The fault scenarios. Each returns one result row:

    acknowledged  writes the platform answered as stored (HTTP 201)
    stored        of those, found in the database afterwards
    lost          acknowledged but not stored, or whose event was never delivered
    duplicated    stored twice, or an event delivered twice (at-least-once; same event id)
    recovery_s    from the end of the fault until /readyz answered 200 again
    notes         what else was measured (answers during the fault, restarts, ...)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections import Counter

import httpx

from .harness import Receiver, SiteLoad, wait_until


def _delivered(receiver: Receiver, sites: list[int], limit: float) -> tuple[int, int]:
    """(missing, duplicated) site events once every acknowledged site was delivered or the
    limit passed."""
    wanted = set(sites)
    wait_until(lambda: wanted <= set(receiver.site_ids()), limit, 0.5)
    counts = Counter(receiver.site_ids())
    missing = len(wanted - set(counts))
    duplicated = sum(n - 1 for site, n in counts.items() if site in wanted and n > 1)
    return missing, duplicated


def _stored(pg, acked: list[dict]) -> tuple[int, int]:
    names = [a["name"] for a in acked]
    if not names:
        return 0, 0
    prefix = names[0].rsplit("-", 1)[0]
    rows = pg.psql(f"SELECT name FROM core_site WHERE name LIKE '{prefix}-%'")
    counts = Counter(r[0] for r in rows)
    stored = sum(1 for n in names if counts.get(n))
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    return stored, duplicated


def database_outage(ctx) -> dict:
    """Findings 1-3: PostgreSQL stopped in immediate mode for 8 s under API load. The
    worker must survive, `up` must not exit, every path answers 503 + Retry-After within
    bounded time, and everything recovers by itself."""
    pg, platform, receiver = ctx.pg, ctx.platform, ctx.receiver
    worker_before = platform.role("worker")
    load = SiteLoad(platform.base, ctx.token, ctx.client, f"outage-{int(time.time())}").start()
    time.sleep(4)
    fault_start = time.monotonic()
    pg.stop_immediate()
    during = []
    # Probes on the other paths while the database is down: a page and /readyz.
    for _ in range(3):
        for path in ("/readyz", "/clients/", "/api/v1/clients/"):
            started = time.monotonic()
            try:
                r = httpx.get(f"{platform.base}{path}", timeout=30,
                              headers={"Authorization": f"Bearer {ctx.token}"})
                during.append((path, r.status_code, time.monotonic() - started,
                               r.headers.get("retry-after")))
            except httpx.HTTPError as exc:
                during.append((path, type(exc).__name__, time.monotonic() - started, None))
        time.sleep(1.5)
    time.sleep(max(0.0, 8 - (time.monotonic() - fault_start)))
    pg.start()
    recovery = wait_until(platform.ready, 120, 0.25)  # from the database being back
    time.sleep(3)
    load.stop()
    acked = load.acked()
    in_fault = [a for a in load.answers if a["status"] != 201]
    stored, dup_rows = _stored(pg, acked)
    missing, dup_events = _delivered(receiver, [a["site"] for a in acked], 90)
    worker_after = platform.role("worker")
    same_worker = bool(worker_before and worker_after and worker_before.pid == worker_after.pid)
    statuses = Counter(str(a["status"]) for a in in_fault)
    statuses.update(str(s) for _, s, _, _ in during)
    slowest = max([a["latency"] for a in in_fault] + [d[2] for d in during] + [0])
    no_retry_after = sum(1 for a in in_fault if a["status"] == 503 and not a["retry_after"])
    return {
        "acknowledged": len(acked), "stored": stored,
        "lost": (len(acked) - stored) + missing, "duplicated": dup_rows,
        "webhook_redeliveries": dup_events,
        "recovery_s": None if recovery is None else round(recovery, 1),
        "notes": (f"answers while down: {dict(statuses)}; slowest {slowest:.1f} s; "
                  f"503 without Retry-After: {no_retry_after}; up running: "
                  f"{platform.proc.poll() is None}; worker "
                  f"{'kept running' if same_worker else 'restarted'}"),
        "ok": (len(acked) == stored and missing == 0 and dup_rows == 0 and recovery is not None
               and platform.proc.poll() is None and "500" not in statuses
               and slowest < 10 and no_retry_after == 0),
    }


def worker_kill(ctx) -> dict:
    """Finding 8: the worker killed -9 while it delivers (slow receiver). `up` restarts it,
    the cut task is put back in the queue, the cut delivery's lease expires and it is
    delivered again (same event id); the attempt log shows the cut attempt."""
    platform, receiver = ctx.platform, ctx.receiver
    receiver.delay = 1.0
    load = SiteLoad(platform.base, ctx.token, ctx.client, f"kill-{int(time.time())}",
                    pause=0.2).start()
    time.sleep(3)
    worker = platform.role("worker")
    wait_until(lambda: receiver.in_flight > 0, 20, 0.02)  # a webhook request is on its way
    worker.kill()
    killed_at = time.monotonic()
    restarted = wait_until(lambda: platform.role("worker") is not None
                           and platform.role("worker").pid != worker.pid, 90, 0.25)
    ready = wait_until(platform.ready, 90, 0.25)
    recovery = None if ready is None else time.monotonic() - killed_at
    load.stop()
    receiver.delay = 0.0
    acked = load.acked()
    stored, dup_rows = _stored(ctx.pg, acked)
    missing, dup_events = _delivered(receiver, [a["site"] for a in acked], 120)
    running = ctx.pg.psql("SELECT count(*) FROM django_tasks_database_dbtaskresult "
                          "WHERE status = 'RUNNING' AND started_at < now() - interval '60 s'")
    interrupted = ctx.pg.psql("SELECT count(*) FROM core_webhookdelivery "
                              "WHERE error LIKE 'interrupted%'")
    return {
        "acknowledged": len(acked), "stored": stored, "lost": (len(acked) - stored) + missing,
        "duplicated": dup_rows, "webhook_redeliveries": dup_events,
        "recovery_s": None if recovery is None else round(recovery, 1),
        "notes": (f"worker restarted after {restarted and round(restarted, 1)} s; tasks "
                  f"RUNNING > 60 s: {running[0][0]}; attempts logged as interrupted: "
                  f"{interrupted[0][0]}; up running: {platform.proc.poll() is None}"),
        "ok": (len(acked) == stored and missing == 0 and restarted is not None
               and recovery is not None and running[0][0] == "0"),
    }


def hostile_clients(ctx) -> dict:
    """Finding 7: a 50 MB body to the unauthenticated enroll endpoint is refused before it
    is read; a chunked one is cut at the limit; slow-header connections are closed."""
    platform = ctx.platform
    notes = []
    ok = True
    # Declared length: 413 before a byte of the body is sent.
    with socket.create_connection(("127.0.0.1", platform.port), timeout=10) as sock:
        sock.sendall(b"POST /agent/v1/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n")
        started = time.monotonic()
        head = sock.recv(200)
        took = time.monotonic() - started
    declared_ok = head.startswith(b"HTTP/1.1 413")
    notes.append(f"declared 50 MB: {head.split(b' ')[1].decode() if head else 'no answer'} "
                 f"after {took:.2f} s with 0 body bytes sent")
    ok &= declared_ok
    # Chunked: the server answers 413 once the limit is passed, well before 50 MB.
    sent = 0
    status = None
    with socket.create_connection(("127.0.0.1", platform.port), timeout=10) as sock:
        sock.sendall(b"POST /agent/v1/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.settimeout(0.05)
        chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
        while sent < 50 * 2**20:
            try:
                sock.sendall(chunk)
                sent += 0x4000
            except OSError:
                break
            try:
                data = sock.recv(200)
                if data:
                    status = data.split(b" ")[1].decode()
                    break
            except TimeoutError:
                pass
    notes.append(f"chunked: {status} after {sent // 1024} KiB sent")
    ok &= status == "413" and sent < 8 * 2**20
    # Slow clients: 200 connections that never finish their headers.
    socks = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", platform.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(s)

    def closed(s) -> bool:
        s.settimeout(0.01)
        try:
            return s.recv(1) == b""
        except TimeoutError:
            return False
        except OSError:
            return True

    took = wait_until(lambda: all(closed(s) for s in socks), 30, 0.5)
    still_open = sum(1 for s in socks if not closed(s))
    for s in socks:
        s.close()
    when = f"after {took:.1f} s" if took is not None else "by 30 s"
    notes.append(f"200 slow-header connections: {200 - still_open} closed {when}")
    healthy = httpx.get(f"{platform.base}/healthz", timeout=5).status_code == 200
    ok &= still_open == 0 and healthy
    return {"acknowledged": 0, "stored": 0, "lost": 0, "duplicated": 0,
            "recovery_s": 0.0, "notes": "; ".join(notes), "ok": ok}


def redis_outage(ctx) -> dict:
    """Findings 1-2 on the Redis queue: Redis killed -9 for 8 s under API load. Events are
    in the database outbox, so nothing is lost; the worker survives; the sweep catches up."""
    redis_platform, receiver = ctx.redis_platform, ctx.receiver
    load = SiteLoad(redis_platform.base, ctx.redis_token, ctx.redis_client,
                    f"redis-{int(time.time())}").start()
    time.sleep(3)
    worker_before = redis_platform.role("worker")
    ctx.redis.kill()
    time.sleep(8)
    ctx.redis.start()
    recovery = wait_until(redis_platform.ready, 120, 0.25)
    time.sleep(2)
    load.stop()
    acked = load.acked()
    stored, dup_rows = _stored(ctx.pg, acked)
    missing, dup_events = _delivered(receiver, [a["site"] for a in acked], 120)
    try:
        readyz = httpx.get(f"{redis_platform.base}/readyz", timeout=10).text
    except httpx.HTTPError as exc:
        readyz = type(exc).__name__
    missing_sites = sorted(set(a["site"] for a in acked) - set(receiver.site_ids()))
    if missing_sites:
        ids = ",".join(str(i) for i in missing_sites[:20])
        rows = ctx.pg.psql(
            "SELECT d.status, d.attempts, d.next_attempt_at > now(), d.locked_until, "
            "left(d.last_error, 120) FROM core_eventdelivery d JOIN core_event e ON "
            "e.id = d.event_id WHERE d.handler LIKE 'webhook:%' AND e.kind = 'site.created' "
            f"AND (e.payload->>'id')::int IN ({ids})")
        print(f"faults: redis_outage: undelivered {missing_sites}: {rows}", flush=True)
    print(f"faults: redis_outage: /readyz now: {readyz}", flush=True)
    worker_after = redis_platform.role("worker")
    same_worker = bool(worker_before and worker_after and worker_before.pid == worker_after.pid)
    failed = Counter(str(a["status"]) for a in load.answers if a["status"] != 201)
    return {
        "acknowledged": len(acked), "stored": stored, "lost": (len(acked) - stored) + missing,
        "duplicated": dup_rows, "webhook_redeliveries": dup_events,
        "recovery_s": None if recovery is None else round(recovery, 1),
        "notes": (f"API answers while Redis was down: {dict(failed) or 'all 201'}; worker "
                  f"{'kept running' if same_worker else 'restarted'}; "
                  f"up running: {redis_platform.proc.poll() is None}"),
        "ok": len(acked) == stored and missing == 0 and recovery is not None,
    }


def backup_restore(ctx) -> dict:
    """Finding 5 on PostgreSQL: `watchkeeper backup` (pg_dump) under API load; the database
    dropped and the data directory's stored files deleted; `watchkeeper restore`; every site
    acknowledged before the backup, and the attachment, are back."""
    platform, pg = ctx.platform, ctx.pg
    if getattr(ctx, "redis_platform", None) is not None:
        ctx.redis_platform.stop()  # it shares the database: a restore needs it stopped
    out = platform.cli("shell", "-c", (
        "from watchkeeper.core.models import Client\n"
        "from watchkeeper.helpdesk import actions\n"
        "t = actions.create_ticket(actor='faults', subject='backup', "
        "client=Client.objects.first(), notify=False)\n"
        "a = actions.attach_file(actor='faults', ticket=t, filename='x.bin', "
        "data=b'attachment-bytes' * 100)\n"
        "print('SHA', a.sha256)"))
    sha = next((line.split()[1] for line in out.stdout.splitlines()
                if line.startswith("SHA ")), None)
    load = SiteLoad(platform.base, ctx.token, ctx.client, f"backup-{int(time.time())}").start()
    time.sleep(3)
    before = [a["name"] for a in load.acked()]
    target = ctx.workdir / "backup"
    result = platform.cli("backup", str(target))
    load.stop()
    platform.stop()
    # destroy: the database and the stored files
    subprocess_ok = result.returncode == 0
    subprocess.run([str(pg.bindir / "dropdb"), "-h", "127.0.0.1", "-p", str(pg.port), "-U",
                    "postgres", "--force", "watchkeeper"], check=True)
    subprocess.run([str(pg.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(pg.port), "-U",
                    "postgres", "watchkeeper"], check=True)
    shutil.rmtree(platform.data / "attachments", ignore_errors=True)
    started = time.monotonic()
    restored = platform.cli("restore", str(target))
    recovery = platform.start() if restored.returncode == 0 else None
    took = time.monotonic() - started
    names = {r[0] for r in pg.psql("SELECT name FROM core_site")}
    stored = sum(1 for n in before if n in names)
    attachment_back = bool(sha) and (platform.data / "attachments" / sha[:2] / sha).is_file()
    return {
        "acknowledged": len(before), "stored": stored, "lost": len(before) - stored,
        "duplicated": 0, "recovery_s": round(took, 1),
        "notes": (f"backup {'ok' if subprocess_ok else 'FAILED: ' + result.stderr[-200:]}; "
                  "restore "
                  f"{'ok' if restored.returncode == 0 else 'FAILED: ' + restored.stderr[-300:]}; "
                  f"attachment back: {attachment_back}; platform ready after restore: "
                  f"{recovery is not None}"),
        "ok": subprocess_ok and restored.returncode == 0 and stored == len(before)
        and attachment_back,
    }


SCENARIOS = {
    "database_outage": database_outage,
    "worker_kill": worker_kill,
    "hostile_clients": hostile_clients,
    "redis_outage": redis_outage,
    "backup_restore": backup_restore,  # last: it restarts the platform
}
