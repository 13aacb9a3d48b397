"""`watchkeeper signer`: the only process that reads the command-signing key. Runs until
SIGTERM (`watchkeeper up` starts it as one of its roles); `--once` sweeps once."""

from __future__ import annotations

import logging
import signal
import threading

from django.core.management.base import BaseCommand

from watchkeeper.agents import actions
from watchkeeper.agents.commands import signer

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Sign queued agent commands with the key in WATCHKEEPER_SIGNER_KEY_FILE."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one sweep, then exit")
        parser.add_argument("--init", action="store_true",
                            help="create the key if missing, publish its public half, exit")
        parser.add_argument("--interval", type=float, default=1.0,
                            help="seconds between sweeps (default %(default)s)")

    def handle(self, *args, once, init, interval, **options):
        key = signer.load_or_create_key()
        actions.register_signer_key(actor="signer", public_key_raw=signer.public_bytes(key))
        if init:
            self.stdout.write("signer: key ready, public key published")
            return
        if once:
            self.stdout.write(f"signer: {signer.sign_pending(key)}")
            return
        from watchkeeper.core.processes import Heartbeat

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        self.stdout.write("signer: signing queued commands")
        from watchkeeper.core.processes import run_retrying

        def sweep():
            result = signer.sign_pending(key)
            if result.get("signed") or result.get("expired"):
                log.info("signer: %s", result)

        with Heartbeat("signer"):
            # A database outage: one warning, retries with backoff, one line when back.
            run_retrying("signer", sweep, stop, tick=interval)
