"""`watchkeeper web`: serve the ASGI application with uvicorn (static files by WhiteNoise)."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from watchkeeper.core import baseurl
from watchkeeper.core.limits import GuardedH11Protocol
from watchkeeper.core.processes import cannot_start, port_problem


class Command(BaseCommand):
    help = "Serve the web UI, the REST API and the agent API."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1,
                            help="Web worker processes (default: %(default)s).")

    def handle(self, *args, host, port, workers, **options):
        problem = port_problem(host, port)
        if problem:
            cannot_start("web", f"{problem}; choose another with --port (or stop the "
                                "program using it)")
        # WhiteNoise serves from the finders; an existing STATIC_ROOT keeps it quiet.
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        base = baseurl.follow_listen_address(host, port)
        self.stdout.write(f"web: serving on http://{host}:{port} ({workers} worker(s)), "
                          f"links and agent enrollment use {base}")
        if baseurl.is_wildcard(host) and not baseurl.configured():
            self.stdout.write("web: listening on every interface: set WATCHKEEPER_BASE_URL to "
                              "the address agents and mail recipients reach")
        self.stdout.flush()
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
        if settings.ACCESS_LOG and level in ("warning", "error", "critical"):
            level = "info"  # uvicorn's access log lines are INFO
        uvicorn.run(
            "watchkeeper.asgi:application", host=host, port=port, workers=workers,
            lifespan="off", log_level=level, access_log=settings.ACCESS_LOG,
            proxy_headers=settings.SECURE_PROXY_SSL_HEADER is not None,
            forwarded_allow_ips=",".join(settings.TRUSTED_PROXIES) or "127.0.0.1",
            server_header=False, http=GuardedH11Protocol,
            limit_concurrency=settings.WEB_MAX_CONNECTIONS or None,
        )
