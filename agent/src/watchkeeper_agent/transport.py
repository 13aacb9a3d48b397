"""HTTP to the server with the standard library, every request signed with the agent key."""

from __future__ import annotations

import json
import secrets
import ssl
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import __version__
from .protocol import (
    HEADER_AGENT,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    b64e,
    canonical_request,
)


class Unreachable(Exception):
    """The server could not be reached (network, DNS, 5xx): spool and retry later."""


class Refused(Exception):
    """The server answered with a 4xx: retrying the same request will not help."""

    def __init__(self, status: int, body: dict[str, Any]):
        self.status = status
        self.body = body
        super().__init__(f"{status}: {body.get('detail') or body}")


class InsecureServer(ValueError):
    """A plain http:// server URL without an explicit --insecure."""


def check_server_url(server: str, *, insecure: bool = False) -> None:
    """https:// only; http:// (tokens, signer key and commands in clear) only when the
    operator said --insecure, e.g. on a lab or in tests."""
    scheme = urlsplit(server).scheme
    if scheme == "https":
        return
    if scheme == "http":
        if insecure:
            return
        raise InsecureServer(f"refusing plain http:// server {server}: use https://, or "
                             "pass --insecure on a lab network you trust")
    raise ValueError("the server URL must start with https://")


class Transport:
    def __init__(self, server: str, *, timeout: float = 15.0, cafile: str | None = None,
                 insecure: bool = False):
        check_server_url(server, insecure=insecure)
        self.server = server.rstrip("/")
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=cafile) if server.startswith(
            "https") else None

    def _url(self, path: str) -> str:
        return f"{self.server}{path}"

    def request(self, method: str, path: str, payload: Any = None, *,
                key: Ed25519PrivateKey | None = None, agent_id: str = "") -> dict[str, Any]:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": f"watchkeeper-agent/{__version__}"}
        if key is not None:
            timestamp = int(time.time())
            nonce = secrets.token_hex(16)
            # Sign the path as the server sees it (any prefix in the server URL included).
            full_path = urlsplit(self._url(path)).path
            message = canonical_request(method=method, path=full_path, timestamp=timestamp,
                                        nonce=nonce, body=body, agent_id=agent_id)
            headers.update({HEADER_AGENT: agent_id, HEADER_TIMESTAMP: str(timestamp),
                            HEADER_NONCE: nonce, HEADER_SIGNATURE: b64e(key.sign(message))})
        # The scheme was checked in __init__: only http and https reach urlopen.
        req = urllib.request.Request(self._url(path),  # noqa: S310
                                     data=body if method != "GET" else None,
                                     headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout,  # noqa: S310
                                        context=self.context) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                data = json.loads(raw or b"{}")
            except ValueError:
                data = {"detail": raw[:200].decode(errors="replace")}
            if 400 <= exc.code < 500:
                raise Refused(exc.code, data if isinstance(data, dict) else {}) from exc
            raise Unreachable(f"server error {exc.code}") from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise Unreachable(str(exc)) from exc
        try:
            return json.loads(raw or b"{}")
        except ValueError as exc:
            raise Unreachable("server sent a body that is not JSON") from exc
