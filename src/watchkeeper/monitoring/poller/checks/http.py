"""HTTP(S) check: status, keyword, latency, redirect policy.

Config: url, method (GET/HEAD), expected_status (list of codes or "2xx"-style classes;
default any 2xx/3xx that is not followed), keyword (must appear in the body),
keyword_absent (must not), redirects: "follow" (judge the final response),
"same_host" (follow, but a redirect to another host is critical) or "none" (judge the
first response as is), max_redirects, verify_tls (default true), timeout (s),
latency_warning / latency_critical (ms), headers (dict of str).

Redirects are followed here rather than by httpx so the policy sees every hop.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx

from .base import (
    CRITICAL,
    OK,
    ConfigError,
    Outcome,
    boolean,
    integer,
    judge,
    text,
    thresholds,
    timeout,
    worst,
)

KIND = "http"
BODY_LIMIT = 1024 * 1024  # bytes searched for the keyword
REDIRECT_CODES = {301, 302, 303, 307, 308}


def _status_spec(value) -> list[str]:
    if value in (None, "", []):
        return []
    items = value if isinstance(value, list) else str(value).replace(",", " ").split()
    spec = []
    for item in items:
        item = str(item).strip().lower()
        if len(item) == 3 and item[0] in "12345" and (item[1:].isdigit() or item[1:] == "xx"):
            spec.append(item)
        else:
            raise ConfigError(f"expected_status: {item!r} is not a status code or class")
    return spec


def validate(config: dict) -> dict:
    url = text(config, "url", required=True, max_length=2000)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("url: must be an http:// or https:// URL with a host")
    headers = config.get("headers") or {}
    if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ConfigError("headers: must map names to text values")
    return {
        "url": url,
        "method": text(config, "method", "GET", choices=("GET", "HEAD")),
        "expected_status": _status_spec(config.get("expected_status")),
        "keyword": text(config, "keyword", None, max_length=500),
        "keyword_absent": text(config, "keyword_absent", None, max_length=500),
        "redirects": text(config, "redirects", "follow",
                          choices=("follow", "same_host", "none")),
        "max_redirects": integer(config, "max_redirects", 5, minimum=0, maximum=20),
        "verify_tls": boolean(config, "verify_tls", True),
        "timeout": timeout(config, 10.0),
        "headers": headers,
        **thresholds(config, "latency"),
    }


def target(config: dict) -> str:
    return config["url"]


def status_ok(code: int, spec: list[str]) -> bool:
    if not spec:
        return 200 <= code < 400
    for item in spec:
        if item.endswith("xx") and str(code)[0] == item[0]:
            return True
        if item == str(code):
            return True
    return False


async def _read_body(response: httpx.Response) -> str:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= BODY_LIMIT:
            break
    return b"".join(chunks)[:BODY_LIMIT].decode(response.encoding or "utf-8", "replace")


async def run(config: dict, ctx) -> Outcome:
    client: httpx.AsyncClient = ctx.http_client(config["verify_tls"])
    url = config["url"]
    first_host = urlsplit(url).hostname
    hops: list[str] = []
    started = time.perf_counter()
    try:
        while True:
            request = client.build_request(config["method"], url, headers=config["headers"],
                                           timeout=config["timeout"])
            response = await client.send(request, stream=True)
            try:
                code = response.status_code
                location = response.headers.get("location")
                if (code in REDIRECT_CODES and location and config["redirects"] != "none"):
                    nxt = str(response.url.join(location))
                    hops.append(f"{code} {nxt}")
                    if (config["redirects"] == "same_host"
                            and urlsplit(nxt).hostname != first_host):
                        return Outcome(CRITICAL, f"redirected off host to {nxt}",
                                       value=(time.perf_counter() - started) * 1000,
                                       details={"status": code, "redirects": hops})
                    if len(hops) > config["max_redirects"]:
                        return Outcome(CRITICAL, f"more than {config['max_redirects']} "
                                                 f"redirects", details={"redirects": hops})
                    url = nxt
                    continue
                body = ""
                if config["method"] != "HEAD" and (config["keyword"]
                                                   or config["keyword_absent"]):
                    body = await _read_body(response)
            finally:
                await response.aclose()
            break
    except httpx.TimeoutException:
        return Outcome(CRITICAL, f"no response within {config['timeout']:g} s",
                       details={"error": "timeout", "redirects": hops})
    except httpx.HTTPError as exc:
        reason = str(exc) or exc.__class__.__name__
        return Outcome(CRITICAL, f"request failed: {reason}"[:500],
                       details={"error": reason[:500], "redirects": hops})
    latency = (time.perf_counter() - started) * 1000
    details = {"status": code, "latency_ms": round(latency, 3), "final_url": url}
    if hops:
        details["redirects"] = hops
    problems, state = [], OK
    if not status_ok(code, config["expected_status"]):
        state = CRITICAL
        problems.append(f"status {code} not expected")
    if config["keyword"] and config["keyword"] not in body:
        state = CRITICAL
        problems.append(f"keyword {config['keyword']!r} missing")
    if config["keyword_absent"] and config["keyword_absent"] in body:
        state = CRITICAL
        problems.append(f"keyword {config['keyword_absent']!r} present")
    latency_state = judge(latency, config, "latency")
    if latency_state != OK:
        problems.append(f"slow: {latency:.0f} ms")
    state = worst(state, latency_state)
    message = f"HTTP {code} in {latency:.1f} ms"
    if problems:
        message += " — " + "; ".join(problems)
    return Outcome(state, message, value=latency, details=details)
