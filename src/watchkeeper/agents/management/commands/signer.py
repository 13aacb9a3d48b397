"""`watchkeeper signer`: the only process that reads the command-signing key."""

from __future__ import annotations

import logging
import time

from django.core.management.base import BaseCommand

from watchkeeper.agents import actions, signer

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
        while True:
            result = signer.sign_pending(key)
            if result["signed"] or result["expired"]:
                log.info("signer: %s", result)
            if once:
                self.stdout.write(f"signer: {result}")
                return
            time.sleep(interval)
