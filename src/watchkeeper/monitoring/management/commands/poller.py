"""`watchkeeper poller`: run the server-side network checks (see monitoring.poller).

Scale out by running several with `--shard I --shards N` (each takes the checks whose id
modulo N is I); two pollers on the same shard are safe too (each run is claimed by a
conditional UPDATE), they only share the work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from watchkeeper.core.processes import Heartbeat
from watchkeeper.monitoring.poller.engine import Poller, summary


class Command(BaseCommand):
    help = "Run the poller of server-side checks (ping, TCP, HTTP, TLS, DNS, SNMP)."

    def add_arguments(self, parser):
        parser.add_argument("--shard", type=int, default=0)
        parser.add_argument("--shards", type=int, default=1)
        parser.add_argument("--concurrency", type=int, default=None,
                            help="Checks in flight at most (default: "
                                 "WATCHKEEPER_POLLER_CONCURRENCY).")
        parser.add_argument("--tick", type=float, default=1.0,
                            help="Seconds between sweeps for due checks.")
        parser.add_argument("--once", action="store_true",
                            help="Run what is due now, record it, print a summary, exit.")

    def handle(self, *args, shard, shards, concurrency, tick, once, **options):
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request
        try:
            poller = Poller(shard=shard, shards=shards, concurrency=concurrency, tick=tick)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if once:
            stats = asyncio.run(poller.run_once())
            self.stdout.write(json.dumps(summary(stats), sort_keys=True))
            return

        async def main():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            return await poller.run(stop)

        self.stdout.write(f"poller started: shard {shard}/{shards}, "
                          f"{poller.concurrency} checks in flight at most")
        self.stdout.flush()
        with Heartbeat("poller"):
            stats = asyncio.run(main())
        self.stdout.write("poller stopped: " + json.dumps(summary(stats), sort_keys=True))
