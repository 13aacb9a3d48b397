"""`watchkeeper web`: serve the ASGI application with uvicorn (static files by WhiteNoise)."""

from __future__ import annotations

from pathlib import Path

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from watchkeeper.core import baseurl


class Command(BaseCommand):
    help = "Serve the web UI, the REST API and the agent API."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1,
                            help="Web worker processes (default: %(default)s).")

    def handle(self, *args, host, port, workers, **options):
        # WhiteNoise serves from the finders; an existing STATIC_ROOT keeps it quiet.
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        base = baseurl.follow_listen_address(host, port)
        self.stdout.write(f"web: serving on http://{host}:{port} ({workers} worker(s)), "
                          f"links and agent enrollment use {base}")
        if baseurl.is_wildcard(host) and not baseurl.configured():
            self.stdout.write("web: listening on every interface: set WATCHKEEPER_BASE_URL to "
                              "the address agents and mail recipients reach")
        uvicorn.run(
            "watchkeeper.asgi:application", host=host, port=port, workers=workers,
            lifespan="off", log_level=settings.LOGGING["root"]["level"].lower(),
            proxy_headers=settings.SECURE_PROXY_SSL_HEADER is not None,
            forwarded_allow_ips=",".join(settings.TRUSTED_PROXIES) or "127.0.0.1",
            server_header=False,
        )
