"""Security review of the lean check-in path (agents/checkin/fastpath.py +
agents/checkin/batch.py): each test is a way a check-in could be treated differently by the
lean path than by the Django view, or a way the batch writer could fail its waiters."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time

import pytest
from django.test import Client

from tests.agent_harness import LeanResponse, run_asgi
from tests.test_agents_ingest import make_signed, metrics_batch
from watchkeeper.agents.checkin import auth, batch
from watchkeeper.agents.models import AgentNonce, MetricName, MetricSample
from watchkeeper.agents.protocol import (
    HEADER_AGENT,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    canonical_request,
)

CHECKIN = "/agent/v1/checkin"


def call(app, body: bytes, headers: list[tuple[str, str]], *, scheme: str = "http",
         host: str = "testserver", messages: list[dict] | None = None) -> LeanResponse:
    """One request through an ASGI app with full control of the scope: raw header list
    (duplicates, odd names), scheme, Host, and the body messages as they arrive."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": scheme, "path": CHECKIN, "raw_path": CHECKIN.encode(), "root_path": "",
        "query_string": b"", "server": ("testserver", 80), "client": ("127.0.0.1", 50000),
        "headers": [(b"host", host.encode()), (b"content-type", b"application/json"),
                    *[(k.lower().encode(), v.encode()) for k, v in headers]],
    }
    return run_asgi(app, scope, messages if messages is not None else [
        {"type": "http.request", "body": body, "more_body": False}])


def signed_headers(signed, raw: bytes, *, nonce: str | None = None) -> dict[str, str]:
    ts, nonce = int(time.time()), nonce or secrets.token_hex(16)
    signature = base64.b64encode(signed.key.sign(canonical_request(
        method="POST", path=CHECKIN, timestamp=ts, nonce=nonce, body=raw,
        agent_id=str(signed.agent.uid)))).decode()
    return {"X-WK-Agent": str(signed.agent.uid), "X-WK-Timestamp": str(ts),
            "X-WK-Nonce": nonce, "X-WK-Signature": signature}


@pytest.fixture(params=["django", "lean"])
def mode(request, client, db, settings):
    settings.AGENT_BATCH_WRITER = "inline"
    settings.AGENT_LEAN_CHECKIN = request.param == "lean"
    return request.param


@pytest.fixture
def app():
    from watchkeeper.asgi import application

    return application


def test_a_host_outside_allowed_hosts_is_refused_on_both_paths(mode, client, app):
    # Django's CommonMiddleware refuses a Host not in ALLOWED_HOSTS (400) before the view.
    signed = make_signed(client, mode)
    raw = json.dumps(metrics_batch(1)).encode()
    response = call(app, raw, list(signed_headers(signed, raw).items()), host="evil.example")
    assert response.status_code == 400
    assert MetricSample.objects.count() == 0 and AgentNonce.objects.count() == 0


def test_plain_http_when_tls_is_required_is_not_stored_on_either_path(mode, client, settings):
    # With WATCHKEEPER_SECURE, SecurityMiddleware redirects plain http to https (301): the
    # check-in that came in clear is not stored. The lean path must not store it either.
    from django.core.handlers.asgi import ASGIHandler

    from watchkeeper.agents.checkin.fastpath import AgentIngestApp

    settings.SECURE_SSL_REDIRECT = True
    secure_app = AgentIngestApp(ASGIHandler())  # middleware reads the setting when built
    signed = make_signed(client, mode)
    raw = json.dumps(metrics_batch(1)).encode()
    response = call(secure_app, raw, list(signed_headers(signed, raw).items()))
    assert response.status_code == 301
    assert MetricSample.objects.count() == 0 and AgentNonce.objects.count() == 0
    # Over https it is stored as usual.
    response = call(secure_app, raw, list(signed_headers(signed, raw).items()), scheme="https")
    assert response.status_code == 200 and MetricSample.objects.count() == 1


def test_headers_are_read_as_django_reads_them(mode, client, app):
    # Django's ASGIRequest joins a repeated header with "," (two nonces: malformed) and
    # ignores header names with "_" (no spoofing of "x-wk-nonce" by "x_wk_nonce"): the
    # lean path reads them the same way.
    signed = make_signed(client, mode)
    raw = json.dumps(metrics_batch(1)).encode()
    doubled = [*signed_headers(signed, raw).items(), ("x-wk-nonce", secrets.token_hex(16))]
    response = call(app, raw, doubled)
    assert response.status_code == 401 and response.json()["code"] == "malformed_auth"
    underscored = [(k.replace("-", "_"), v) for k, v in signed_headers(signed, raw).items()]
    response = call(app, raw, underscored)
    assert response.status_code == 401 and response.json()["code"] == "unsigned"
    spoofed = [*signed_headers(signed, raw).items(), ("x_wk_nonce", secrets.token_hex(16))]
    response = call(app, raw, spoofed)
    assert response.status_code == 200 and MetricSample.objects.count() == 1


def test_a_lone_surrogate_is_a_400_on_both_paths(mode, client, app):
    # JSON may escape a lone UTF-16 surrogate; Python keeps it in the str, and no database
    # can store it: refused as invalid, never a failed write (500 / 503).
    signed = make_signed(client, mode)
    raw = (b'{"seq": 1, "metrics": {"ts": %d, "values": {"cpu\\ud800": 1}}}'
           % int(time.time()))
    if mode == "django":
        http = Client(raise_request_exception=False)
        meta = {"HTTP_" + k.upper().replace("-", "_"): v
                for k, v in signed_headers(signed, raw).items()}
        response = http.generic("POST", CHECKIN, raw, content_type="application/json", **meta)
    else:
        response = call(app, raw, list(signed_headers(signed, raw).items()))
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert MetricSample.objects.count() == 0 and not MetricName.objects.filter(
        name__startswith="cpu").exists()


def _item(signed, body: dict | bytes) -> batch.CheckinItem:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    h = signed_headers(signed, raw)
    headers = auth.parse_headers({HEADER_AGENT: h["X-WK-Agent"],
                                  HEADER_TIMESTAMP: h["X-WK-Timestamp"],
                                  HEADER_NONCE: h["X-WK-Nonce"],
                                  HEADER_SIGNATURE: h["X-WK-Signature"]})
    return batch.CheckinItem(headers=headers, method="POST", path=CHECKIN, body=raw,
                             batch=json.loads(raw), ip=None)


def test_one_agents_unstorable_check_in_does_not_fail_the_others(client, db, settings):
    # A batch one agent can make fail (here: a name the database cannot encode, had it got
    # past validation) must not turn every other agent's check-in of the batch into a 503.
    good = make_signed(client, "lean", name="Good Ltd")
    evil = make_signed(client, "lean", name="Evil Ltd")
    raw = (b'{"seq": 1, "metrics": {"ts": %d, "values": {"x\\udfff": 1}}}'
           % int(time.time()))
    items = [_item(evil, raw), _item(good, metrics_batch(1))]
    batch.process(items)
    assert items[1].outcome[0] == "ok" and MetricSample.objects.count() == 1
    assert items[0].outcome == ("retry", None)


def test_a_body_streamed_past_the_limit_is_not_read_to_the_end(mode, client, app, settings):
    # A chunked body with no Content-Length: the lean path answers 413 once the limit is
    # passed instead of draining whatever the client keeps sending.
    settings.AGENT_MAX_BODY_BYTES = 1000
    signed = make_signed(client, mode)
    if mode == "django":
        pytest.skip("Django's ASGI handler reads every body to the end before any view")
    chunks = [{"type": "http.request", "body": b" " * 500, "more_body": True}
              for _ in range(2000)]
    chunks[-1]["more_body"] = False
    response = call(app, b"", list(signed_headers(signed, b"{}").items()), messages=chunks)
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert len(chunks) > 1990  # stopped reading right after the limit


def test_a_waiter_whose_event_loop_closed_does_not_strand_the_others(monkeypatch):
    # The writer resolves each future on its own loop; a loop that closed meanwhile (its
    # request went away) must not kill the writer thread and leave the rest waiting forever.
    def fake_process(items):
        for it in items:
            it.outcome = ("retry", None)

    monkeypatch.setattr(batch, "process", fake_process)
    writer = batch.BatchWriter(max_batch=10, wait_ms=300)
    dead_loop = asyncio.new_event_loop()
    dead_future = dead_loop.create_future()
    dead_loop.close()
    writer.queue.put((batch.CheckinItem(headers=None, method="POST", path=CHECKIN, body=b"",
                                        batch={}, ip=None), dead_loop, dead_future))

    async def live():
        item = batch.CheckinItem(headers=None, method="POST", path=CHECKIN, body=b"",
                                 batch={}, ip=None)
        return await asyncio.wait_for(writer.submit(item), timeout=5)

    assert asyncio.run(live()) == ("retry", None)
    assert writer.thread.is_alive()


SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy",
                    "cross-origin-opener-policy", "strict-transport-security")


def test_the_lean_answers_carry_django_security_headers(client, db, settings):
    from django.core.handlers.asgi import ASGIHandler

    from watchkeeper.agents.checkin.fastpath import AgentIngestApp

    settings.AGENT_BATCH_WRITER = "inline"
    settings.SECURE_HSTS_SECONDS = 3600
    secure_app = AgentIngestApp(ASGIHandler())  # middleware reads the settings when built
    seen = {}
    for mode in ("django", "lean"):
        settings.AGENT_LEAN_CHECKIN = mode == "lean"
        signed = make_signed(client, mode, name=f"Acme {mode}")
        raw = json.dumps(metrics_batch(1)).encode()
        ok = call(secure_app, raw, list(signed_headers(signed, raw).items()), scheme="https")
        forged = call(secure_app, raw, [*signed_headers(signed, b"x").items()],
                      scheme="https")
        assert (ok.status_code, forged.status_code) == (200, 401)
        seen[mode] = [{k: r.headers.get(k) for k in SECURITY_HEADERS} for r in (ok, forged)]
    assert seen["lean"] == seen["django"]
    assert seen["lean"][0]["strict-transport-security"] == "max-age=3600"
