"""`python -m faults [--only a,b] [--budget SECONDS]`: run the fault scenarios against a
private PostgreSQL and Redis (started here, on their own ports) and a `watchkeeper up` on
them; print one row per scenario: acknowledged / stored / lost / duplicated / recovery."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import traceback
from types import SimpleNamespace

from .harness import Platform, PrivatePostgres, PrivateRedis, Receiver, cleanup, tempdir
from .scenarios import SCENARIOS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--budget", type=float, default=1500,
                        help="hard limit for the whole run in seconds (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    # The budget is a hard bound: past it, the run is abandoned (processes cleaned up).
    deadline = threading.Timer(args.budget, lambda: (print(
        f"faults: budget of {args.budget:.0f} s exhausted; stopping", flush=True),
        __import__("os")._exit(3)))
    deadline.daemon = True
    deadline.start()

    work = tempdir()
    ctx = SimpleNamespace(workdir=work)
    rows, started = [], time.monotonic()
    try:
        print(f"faults: private PostgreSQL and Redis in {work}", flush=True)
        ctx.pg = PrivatePostgres(work / "pgroot")
        ctx.redis = PrivateRedis(work)
        ctx.receiver = Receiver()
        if any(name != "redis_outage" for name in names):
            ctx.platform = Platform(work / "db-queue", ctx.pg.url)
            print(f"faults: platform (database queue) ready in {ctx.platform.start():.0f} s",
                  flush=True)
            ctx.token, ctx.client = ctx.platform.setup(ctx.receiver.url)
        if "redis_outage" in names:
            (work / "redis-queue").mkdir(exist_ok=True)
            ctx.redis_platform = Platform(work / "redis-queue", ctx.pg.url, ctx.redis.url)
            print("faults: platform (Redis queue) ready in "
                  f"{ctx.redis_platform.start():.0f} s", flush=True)
            ctx.redis_token, ctx.redis_client = ctx.redis_platform.setup(ctx.receiver.url)
        for name in names:
            print(f"faults: {name} ...", flush=True)
            t0 = time.monotonic()
            try:
                row = SCENARIOS[name](ctx)
            except Exception as exc:
                traceback.print_exc()
                row = {"acknowledged": "-", "stored": "-", "lost": "-", "duplicated": "-",
                       "recovery_s": None, "notes": f"scenario failed: {exc}", "ok": False}
            row = {"scenario": name, **row, "took_s": round(time.monotonic() - t0, 1)}
            rows.append(row)
            print(f"faults: {name}: {'OK' if row['ok'] else 'FAILED'} — {row['notes']}",
                  flush=True)
    finally:
        for platform in (getattr(ctx, "platform", None), getattr(ctx, "redis_platform", None)):
            if platform is not None:
                platform.stop()
        for service in (getattr(ctx, "pg", None), getattr(ctx, "redis", None),
                        getattr(ctx, "receiver", None)):
            if service is not None:
                service.close()
        if not args.keep:
            cleanup(work)
    print()
    header = ("scenario", "acknowledged", "stored", "lost", "duplicated",
              "webhook_redeliveries", "recovery_s", "ok")
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row.get(col, "-")) for col in header))
    print(f"\n{len(rows)} scenario(s) in {time.monotonic() - started:.0f} s")
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0 if rows and all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
