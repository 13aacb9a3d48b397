"""`watchkeeper mail-in [--host H --port P]`: the SMTP receiver for helpdesk mail."""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from watchkeeper.core.processes import Heartbeat, cannot_start, port_problem
from watchkeeper.helpdesk.mailin.smtp import controller


class Command(BaseCommand):
    help = "Receive helpdesk mail over SMTP (tickets, replies); runs until SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=None,
                            help=f"Address to listen on (default {settings.MAIL_IN_HOST}, "
                                 f"WATCHKEEPER_MAIL_IN_HOST).")
        parser.add_argument("--port", type=int, default=None,
                            help=f"Port (default {settings.MAIL_IN_PORT}, "
                                 f"WATCHKEEPER_MAIL_IN_PORT).")

    def handle(self, *args, host, port, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        host = host or settings.MAIL_IN_HOST
        port = port if port is not None else settings.MAIL_IN_PORT
        problem = port_problem(host, port)
        if problem:
            cannot_start("mail-in", f"{problem}; choose another with `watchkeeper up "
                                    "--smtp-port N` (or WATCHKEEPER_MAIL_IN_PORT), or run "
                                    "without mail-in: `watchkeeper up --no-mail-in`")
        smtp = controller(host, port)
        try:
            smtp.start()
        except Exception as exc:  # lost a race for the port, or the address went away
            cannot_start("mail-in", f"cannot listen on {host}:{port} ({exc})")
        self.stdout.write(f"mail-in: listening on {smtp.hostname}:{smtp.port}")
        self.stdout.flush()
        with Heartbeat("mail-in"):
            stop.wait()
        smtp.stop()
        self.stdout.write("mail-in: stopped")
