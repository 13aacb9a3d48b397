"""The server's public base URL (links in mail, the agent enrollment command, heartbeat
URLs) follows the address the server listens on, unless WATCHKEEPER_BASE_URL is set.

`watchkeeper up --port P` and `watchkeeper web --port P` call `follow_listen_address`
before they start serving: it sets `settings.BASE_URL` for this process and exports
WATCHKEEPER_BASE_URL to the processes it starts (up's web/worker/scheduler roles, uvicorn's
worker processes), so every role builds the same links.
"""

from __future__ import annotations

import ipaddress
import os

from django.conf import settings

ENV = "WATCHKEEPER_BASE_URL"
# Set next to ENV when it was derived from the listen address rather than configured, so
# a child `web --port` of `up` (same port) may derive it again.
DERIVED_ENV = "WATCHKEEPER_BASE_URL_FROM_PORT"
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


def url_for(host: str, port: int, scheme: str = "http") -> str:
    """http://host:port for a listen address; a wildcard bind is shown as loopback (the
    only address known to reach it), an IPv6 literal in brackets."""
    host = WILDCARDS.get(host, host)
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a name
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")


def configured() -> bool:
    """WATCHKEEPER_BASE_URL was set by the operator (not derived by up/web)."""
    return bool(os.environ.get(ENV)) and not os.environ.get(DERIVED_ENV)


def follow_listen_address(host: str, port: int) -> str:
    """Make the base URL follow `host:port` unless the operator configured one; returns
    the base URL in force."""
    if configured():
        return settings.BASE_URL
    url = url_for(host, port)
    settings.BASE_URL = url
    os.environ[ENV] = url
    os.environ[DERIVED_ENV] = "1"
    return url


def is_wildcard(host: str) -> bool:
    return host in WILDCARDS
