"""`watchkeeper demo`: load the demo MSP (idempotent; see core.demo); with `--server`, also
run its simulated fleet against that running server (see agents/simulator)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from watchkeeper.core import demo


class Command(BaseCommand):
    help = ("Load a realistic demo MSP: clients, sites, contacts, staff, portal users, "
            "policies, tickets, contracts; with --server, run its simulated fleet.")

    def add_arguments(self, parser):
        parser.add_argument("--server", default="",
                            help="Run the simulated fleet against this server "
                                 "(e.g. http://127.0.0.1:8000), checking in through the "
                                 "agent API until stopped.")
        parser.add_argument("--devices", type=int, default=None,
                            help="How many simulated devices (default 240).")
        parser.add_argument("--once", action="store_true",
                            help="Enroll, check in once, send the history, then exit.")
        parser.add_argument("--no-load", action="store_true",
                            help="Skip loading the demo data (it is already loaded).")
        parser.add_argument("--interval", type=float, default=60.0,
                            help="Seconds between the fleet's check-ins (default 60).")

    def handle(self, *args, server, devices, once, no_load, interval, **options):
        from watchkeeper.core import hooks

        fleet_module = hooks.first("core.demo_fleet")
        if fleet_module is None and server:
            raise CommandError("No installed app provides the demo fleet (agents).")
        demo_fleet = fleet_module() if fleet_module else None

        if devices is not None and not server:
            raise CommandError("--devices runs a fleet: give the server too, e.g. "
                               "--server http://127.0.0.1:8000 (or use `up --demo`).")
        if devices is not None and not 1 <= devices <= 100_000:
            raise CommandError("--devices: between 1 and 100000.")
        if not no_load:
            self._load()
        if not server:
            return
        stop = threading.Event()
        if not once:
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        demo_fleet.run(server, devices or demo_fleet.DEFAULT_DEVICES, once=once,
                       interval=interval, stop=stop, out=self.stdout.write)

    def _load(self):
        ctx = demo.load(out=self.stdout.write)
        if ctx.created:
            summary = ", ".join(f"{n} {what}" for what, n in sorted(ctx.created.items()))
            self.stdout.write(f"Demo loaded: created {summary}.")
        else:
            self.stdout.write("Demo already loaded: nothing to add.")
        if ctx.passwords:
            self.stdout.write("\nDemo users (one-time passwords, changed at first sign-in):")
            width = max(len(email) for email, _, _ in ctx.passwords)
            for email, role, password in ctx.passwords:
                self.stdout.write(f"  {email.ljust(width)}  {role:<12} {password}")
