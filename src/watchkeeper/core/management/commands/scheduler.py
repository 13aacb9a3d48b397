"""`watchkeeper scheduler`: enqueue periodic jobs when they are due (see core.scheduler).

Run one or several: each run of a job is claimed with a compare-and-set, so extra
schedulers add availability, never duplicate work.
"""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from watchkeeper.core.processes import Heartbeat
from watchkeeper.core.scheduler import Scheduler


class Command(BaseCommand):
    help = "Run the scheduler of periodic jobs."

    def add_arguments(self, parser):
        parser.add_argument("--tick", type=float, default=1.0,
                            help="Seconds between sweeps for due jobs (default: %(default)s).")

    def handle(self, *args, tick, **options):
        scheduler = Scheduler(tick=tick)
        signal.signal(signal.SIGINT, scheduler.stop)
        signal.signal(signal.SIGTERM, scheduler.stop)
        self.stdout.write(f"scheduler: enqueueing periodic jobs when due (sweep every {tick:g} s)")
        self.stdout.flush()
        with Heartbeat("scheduler"):
            scheduler.run()
        self.stdout.write("scheduler stopped")
