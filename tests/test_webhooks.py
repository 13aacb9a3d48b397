"""Outgoing webhooks: signed POSTs to a real HTTP server, retries, and tenant isolation."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from watchkeeper.core import actions, events, webhooks
from watchkeeper.core.choices import DeliveryStatus
from watchkeeper.core.models import EventDelivery, WebhookDelivery

SECRET = "whsec-test-0123456789abcdef"


class Receiver:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers scripted statuses."""

    def __init__(self, statuses=None):
        self.requests: list[dict] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    servers = []

    def _make(statuses=None):
        server = Receiver(statuses)
        servers.append(server)
        return server

    yield _make
    for server in servers:
        server.close()


def site_created_hook(owner, client, url):
    return actions.create_webhook(actor=owner, name=f"hook {client}", url=url, secret=SECRET,
                                  client=client, event_kinds=["site.created"])


def test_receiver_gets_a_signed_post_that_verify_accepts(db, owner, client_a, receiver):
    # given an endpoint of client A listening for new sites
    server = receiver()
    site_created_hook(owner, client_a, server.url)

    # when a site of client A is created and the outbox is dispatched
    site = actions.create_site(actor=owner, client=client_a, name="Main surgery")
    assert events.dispatch_due()["delivered"] == 1

    # then the receiver got one POST whose signature verifies with the shared secret
    assert len(server.requests) == 1
    request = server.requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["x-watchkeeper-event"] == "site.created"
    assert webhooks.verify(SECRET, request["body"], headers["x-watchkeeper-signature"])
    body = json.loads(request["body"])
    assert body["kind"] == "site.created"
    assert body["client"] == client_a.pk
    assert body["payload"]["id"] == site.pk
    assert headers["x-watchkeeper-delivery"] == body["id"]
    # and a tampered body, or the wrong secret, fails verification
    tampered = request["body"].replace(b"Main surgery", b"Evil surgery")
    assert tampered != request["body"]
    assert not webhooks.verify(SECRET, tampered, headers["x-watchkeeper-signature"])
    assert not webhooks.verify("another-secret", request["body"],
                               headers["x-watchkeeper-signature"])


def test_server_error_is_retried_with_backoff_and_both_attempts_logged(
        db, owner, client_a, receiver):
    # given an endpoint that answers 500 once, then 200
    server = receiver(statuses=[500, 200])
    endpoint = site_created_hook(owner, client_a, server.url)
    actions.create_site(actor=owner, client=client_a, name="Annex")
    delivery = EventDelivery.objects.get(handler=f"webhook:{endpoint.pk}")

    # when the outbox is dispatched
    before = timezone.now()
    events.dispatch_due()

    # then the failure is logged and the retry is scheduled with a backoff
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.next_attempt_at >= before + timedelta(seconds=5)
    assert "HTTP 500" in delivery.last_error
    assert events.dispatch_due()["due"] == 0  # not before the backoff

    # when the backoff has passed
    EventDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    events.dispatch_due()

    # then the second attempt succeeded and both attempts are in the delivery log
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DONE
    assert delivery.attempts == 2
    log = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("attempt")
               .values_list("attempt", "status_code", "success"))
    assert log == [(1, 500, False), (2, 200, True)]
    assert len(server.requests) == 2
    # and both POSTs carried the same event id, so the receiver can deduplicate
    ids = {r["headers"]["X-Watchkeeper-Delivery"] for r in server.requests}
    assert len(ids) == 1


def test_endpoint_of_client_a_never_receives_client_b_events(
        db, owner, client_a, client_b, receiver):
    # given an endpoint of client A listening to every kind of event
    server = receiver()
    endpoint = actions.create_webhook(actor=owner, name="A only", url=server.url,
                                      secret=SECRET, client=client_a)

    # when client B and client A both change
    actions.create_site(actor=owner, client=client_b, name="B depot")
    actions.create_contact(actor=owner, client=client_b, name="Jo B")
    actions.create_site(actor=owner, client=client_a, name="A surgery")
    events.dispatch_due()

    # then the endpoint got only client A's events
    clients = {json.loads(r["body"])["client"] for r in server.requests}
    kinds = [json.loads(r["body"])["kind"] for r in server.requests]
    assert clients == {client_a.pk}
    assert "site.created" in kinds
    # and no delivery to it was ever queued for client B's events
    assert not EventDelivery.objects.filter(handler=f"webhook:{endpoint.pk}",
                                            event__client=client_b).exists()


def test_inactive_endpoint_receives_nothing(db, owner, client_a, receiver):
    # given an endpoint that was switched off
    server = receiver()
    endpoint = site_created_hook(owner, client_a, server.url)
    actions.update_object(actor=owner, obj=endpoint, is_active=False)

    # when a matching event happens
    actions.create_site(actor=owner, client=client_a, name="Closed wing")
    events.dispatch_due()

    # then nothing is sent
    assert server.requests == []
