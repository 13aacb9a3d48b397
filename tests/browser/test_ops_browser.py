"""Browser: audit log → entry, events with a dead letter → replay, webhooks create → secret
shown once → test event → delivery log."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from watchkeeper.core import actions, crypto, events
from watchkeeper.core.choices import DeliveryStatus
from watchkeeper.core.models import Event, EventDelivery, WebhookEndpoint

from .conftest import axe_check, screenshot

pytestmark = pytest.mark.browser


def test_audit_log_filter_and_entry(signed_in_page, owner, client_a, client_b):
    # Given changes to two clients
    actions.update_object(actor=owner, obj=client_a, notes="Alarm code changed")
    actions.update_object(actor=owner, obj=client_b, notes="New dock")
    page = signed_in_page(owner)

    # When the owner opens the audit log from the menu
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", level=1, name="Audit log")).to_be_visible()
    axe_check(page, "audit log")

    # and filters by client A
    page.get_by_label("Client", exact=True).select_option(label="Acme Dental")
    page.get_by_role("button", name="Filter").click()
    table = page.locator("#audit-table")
    expect(table).to_contain_text("Acme Dental")
    expect(table).not_to_contain_text("Borealis Logistics")
    screenshot(page, "audit-log")

    # Then the entry shows the before/after of the changed field
    table.get_by_role("link").first.click()
    changes = page.locator("#changes-table")
    expect(changes).to_contain_text("notes")
    expect(changes).to_contain_text("Alarm code changed")
    axe_check(page, "audit entry")
    screenshot(page, "audit-entry")

    # and a filter that matches nothing says so, with a way out
    page.goto("/admin/audit/?q=no-such-thing")
    expect(page.get_by_role("heading", name="No audit entries match these filters")).to_be_visible()
    axe_check(page, "audit log, no match")


def test_dead_letter_replay(signed_in_page, owner, client_a):
    # Given a dead letter
    event = Event.objects.create(kind="site.changed", client=client_a, payload={"id": 1})
    delivery = EventDelivery.objects.create(event=event, handler="webhook:4242",
                                            status=DeliveryStatus.DEAD, attempts=8,
                                            last_error="ConnectTimeout: timed out")
    page = signed_in_page(owner)

    # When the owner opens the dead-letter filter
    page.goto("/admin/events/")
    page.get_by_role("link", name=re.compile(r"^Dead letters")).click()
    expect(page.get_by_role("link", name=re.compile(r"^Dead letters"))).to_contain_text("1")
    expect(page.locator("#events-table")).to_contain_text("ConnectTimeout")
    expect(page.locator("#events-table")).to_contain_text("Dead letter")
    axe_check(page, "events, dead letters")
    screenshot(page, "events-dead-letters")

    # and replays it
    page.get_by_role("button", name=re.compile("^Replay")).click()

    # Then the page confirms, the dead-letter list is empty, and the row is pending again
    expect(page.get_by_text("queued for delivery now")).to_be_visible()
    expect(page.get_by_role("heading", name="No dead letters")).to_be_visible()
    axe_check(page, "events, after replay")
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING


class _Receiver:
    def __init__(self):
        self.bodies: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.bodies.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = _Receiver()
    yield r
    r.close()


def test_webhook_create_secret_once_test_event_and_log(signed_in_page, owner, client_a,
                                                       receiver):
    page = signed_in_page(owner)
    # Given no webhooks: the empty state offers to create one
    page.goto("/admin/webhooks/")
    expect(page.get_by_role("heading", name="No webhooks yet")).to_be_visible()
    axe_check(page, "webhooks, empty")

    # When the owner creates one for client A
    page.get_by_role("link", name="New webhook").first.click()
    page.get_by_label("Name", exact=True).fill("Ops chat")
    page.get_by_label("URL", exact=True).fill(receiver.url)
    page.get_by_label("Client", exact=True).select_option(label="Acme Dental")
    page.get_by_text("Core (", exact=False).click()  # the group of core's kinds
    page.get_by_label("site.created", exact=True).check()
    axe_check(page, "webhook form")
    screenshot(page, "webhook-form")
    page.get_by_role("button", name="Create webhook").click()

    # Then the secret is shown once, and it is the one stored (encrypted)
    secret = page.get_by_label("Secret", exact=True).input_value()
    endpoint = WebhookEndpoint.objects.get(name="Ops chat")
    assert crypto.decrypt(endpoint.secret_enc, "webhook-secret") == secret
    axe_check(page, "webhook secret")
    screenshot(page, "webhook-secret")
    page.get_by_role("link", name="Done, go to the webhook").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ops chat")
    assert secret not in page.content()

    # When a test event is sent and the outbox runs
    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_text("Test event queued")).to_be_visible()
    events.dispatch_due()
    page.reload()

    # Then the receiver got a correctly signed body and the delivery log shows it
    from watchkeeper.core.webhooks import verify

    assert len(receiver.bodies) == 1
    headers, body = receiver.bodies[0]
    assert verify(secret, body, headers["X-Watchkeeper-Signature"])
    log = page.locator("#delivery-log")
    expect(log).to_contain_text("webhook.test")
    expect(log).to_contain_text("200")
    expect(log).to_contain_text("Delivered")
    axe_check(page, "webhook detail with log")
    screenshot(page, "webhook-detail")

    # When it is deleted, the confirmation names it
    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete webhook “Ops chat”?")
    axe_check(page, "webhook delete confirmation")
    page.get_by_role("button", name="Delete webhook “Ops chat”").click()
    expect(page.get_by_text("Webhook “Ops chat” deleted.")).to_be_visible()
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
