"""Admin pages for operations: audit log, event outbox (dead letters, replay), webhooks."""

from __future__ import annotations

import datetime
import re

import pytest
from django.urls import reverse

from watchkeeper.core import actions, crypto, events
from watchkeeper.core.choices import AuditAction, DeliveryStatus, Role
from watchkeeper.core.models import AuditEntry, Event, EventDelivery, WebhookEndpoint

from .factories import make_user

pytestmark = pytest.mark.django_db


def _dead_letter(client, handler="webhook:999", kind="client.changed"):
    """An event whose one delivery has used up its attempts."""
    event = Event.objects.create(kind=kind, client=client, payload={"id": client.pk if client
                                                                       else None})
    delivery = EventDelivery.objects.create(
        event=event, handler=handler, status=DeliveryStatus.DEAD, attempts=8,
        last_error="ConnectError: connection refused",
    )
    return event, delivery


# --- audit log --------------------------------------------------------------------------

def test_audit_log_filters_by_action_client_actor_and_text(as_user, owner, admin_user,
                                                            client_a, client_b):
    # Given changes by two people to two clients
    actions.update_object(actor=owner, obj=client_a, notes="Night shift")
    actions.update_object(actor=admin_user, obj=client_b, notes="VIP")
    actions.create_site(actor=owner, client=client_b, name="Warehouse North")
    web = as_user(owner)

    # When filtering by action
    body = web.get(reverse("audit_log"), {"action": AuditAction.CREATE}).content.decode()
    # Then only creations are listed
    assert "Warehouse North" in body
    assert "Acme Dental" not in body.split('id="audit-table"')[1]

    # When filtering by client
    body = web.get(reverse("audit_log"), {"client": client_a.pk}).content.decode()
    table = body.split('id="audit-table"')[1]
    assert "Acme Dental" in table and "Warehouse North" not in table

    # When filtering by actor
    body = web.get(reverse("audit_log"), {"actor": admin_user.pk}).content.decode()
    table = body.split('id="audit-table"')[1]
    assert "admin@msp.test" in table and "owner@msp.test" not in table

    # When searching the object text
    body = web.get(reverse("audit_log"), {"q": "warehouse"}).content.decode()
    table = body.split('id="audit-table"')[1]
    assert "Warehouse North" in table and "Acme Dental" not in table


def test_audit_log_date_range_uses_the_viewers_time_zone(as_user, owner, client_a):
    # Given a viewer in Auckland and an entry at 2026-03-01 11:30 UTC (= 2026-03-02 local)
    owner.timezone = "Pacific/Auckland"
    owner.save(update_fields=["timezone"])
    actions.update_object(actor=owner, obj=client_a, notes="x")
    entry = AuditEntry.objects.latest("id")
    AuditEntry.objects.filter(pk=entry.pk).update(
        at=datetime.datetime(2026, 3, 1, 11, 30, tzinfo=datetime.UTC))
    web = as_user(owner)

    # When asking for 2026-03-02 in the viewer's zone, then the entry is found
    body = web.get(reverse("audit_log"), {"from": "2026-03-02", "to": "2026-03-02"}).content
    assert reverse("audit_entry", args=[entry.pk]).encode() in body
    # and its time is shown in the viewer's zone
    assert b"2026-03-02 00:30:00" in body
    # When asking for 2026-03-01, then it is not
    body = web.get(reverse("audit_log"), {"from": "2026-03-01", "to": "2026-03-01"}).content
    assert reverse("audit_entry", args=[entry.pk]).encode() not in body
    assert b"No audit entries match these filters" in body


def test_audit_log_pages_on_the_server(as_user, owner, client_a):
    # Given 30 entries
    for n in range(30):
        actions.update_object(actor=owner, obj=client_a, notes=f"note {n}")
    web = as_user(owner)
    # When asking for 25 a page, then page 2 holds the remaining 5
    first = web.get(reverse("audit_log"), {"per": 25}).content.decode()
    assert "1–25 of 30" in first
    second = web.get(reverse("audit_log"), {"per": 25, "page": 2}).content.decode()
    assert "26–30 of 30" in second
    rows = second.split('id="audit-table"')[1].split("</table>")[0]
    assert rows.count("<tr>") - 1 == 5  # header row + 5 entries


def test_audit_entry_shows_before_and_after(as_user, owner, client_a):
    # Given an update of the client's notes
    actions.update_object(actor=owner, obj=client_a, notes="Night shift")
    entry = AuditEntry.objects.latest("id")
    # When the owner opens the entry
    body = as_user(owner).get(reverse("audit_entry", args=[entry.pk])).content.decode()
    # Then the changed field appears with its old and new value, and who did it
    table = body.split('id="changes-table"')[1]
    assert "notes" in table and "Night shift" in table
    assert "owner@msp.test" in body


def test_technician_of_a_sees_no_audit_rows_of_b(client, owner, client_a, client_b):
    # Given a technician of A (technicians have no audit.view) and a change to client B
    tech = make_user("auditor@msp.test", Role.TECHNICIAN)
    tech.assigned_clients.add(client_a)
    actions.update_object(actor=owner, obj=client_b, notes="secret plans")
    entry_b = AuditEntry.objects.latest("id")
    from tests.conftest import sign_in

    web = sign_in(client, tech)
    # When the technician asks for the log or B's entry, then it is refused
    assert web.get(reverse("audit_log")).status_code == 403
    assert web.get(reverse("audit_entry", args=[entry_b.pk])).status_code == 403


def test_scoped_audit_rows_exclude_other_tenants_and_msp_wide(monkeypatch, client, owner,
                                                              client_a, client_b):
    # Given technicians were granted audit.view (as a deployment might), entries for A, B and
    # one without a client
    from watchkeeper.core import permissions

    caps = dict(permissions.ROLE_CAPABILITIES)
    caps[Role.TECHNICIAN] = caps[Role.TECHNICIAN] | {"audit.view"}
    monkeypatch.setattr(permissions, "ROLE_CAPABILITIES", caps)
    tech = make_user("auditor@msp.test", Role.TECHNICIAN)
    tech.assigned_clients.add(client_a)
    actions.update_object(actor=owner, obj=client_a, notes="visible to A")
    actions.update_object(actor=owner, obj=client_b, notes="secret plans")
    entry_b = AuditEntry.objects.latest("id")
    actions.create_webhook(actor=owner, name="MSP-wide hook", url="https://example.test/h",
                           secret="s")
    entry_global = AuditEntry.objects.latest("id")
    from tests.conftest import sign_in

    web = sign_in(client, tech)
    # When the technician reads the log
    body = web.get(reverse("audit_log")).content.decode()
    # Then A's entry is listed but neither B's nor the MSP-wide one
    assert "Acme Dental" in body
    assert "Borealis" not in body.split('id="audit-table"')[1]
    assert "MSP-wide hook" not in body
    # and opening them directly is a 404
    assert web.get(reverse("audit_entry", args=[entry_b.pk])).status_code == 404
    assert web.get(reverse("audit_entry", args=[entry_global.pk])).status_code == 404


def test_audit_log_has_no_write_routes(as_user, owner, client_a):
    actions.update_object(actor=owner, obj=client_a, notes="x")
    entry = AuditEntry.objects.latest("id")
    web = as_user(owner)
    # When someone POSTs to the entry page, then nothing changes
    web.post(reverse("audit_entry", args=[entry.pk]), {"changes": "{}"})
    entry.refresh_from_db()
    assert entry.changes["notes"] == ["", "x"]


# --- events -----------------------------------------------------------------------------

def test_dead_letter_filter_counts_and_lists_only_dead(as_user, owner, client_a):
    # Given one dead letter and one delivered event
    dead_event, _ = _dead_letter(client_a, kind="site.changed")
    ok = Event.objects.create(kind="contact.created", client=client_a)
    EventDelivery.objects.create(event=ok, handler="x", status=DeliveryStatus.DONE, attempts=1)
    web = as_user(owner)
    # When opening the dead-letter filter
    body = web.get(reverse("events"), {"status": "dead"}).content.decode()
    # Then the tab shows the count and only the dead event is listed
    assert re.search(r"Dead letters <span class=\"count\">1</span>", body)
    table = body.split('id="events-table"')[1]
    assert "site.changed" in table and "contact.created" not in table
    assert "connection refused" in table
    assert "Dead letter" in table  # a word, not colour alone


def test_replay_turns_a_dead_letter_pending_and_audits(as_user, owner, client_a):
    # Given a dead letter
    event, delivery = _dead_letter(client_a)
    web = as_user(owner)
    # When the owner replays it
    response = web.post(reverse("event_replay", args=[delivery.pk]),
                        {"next": reverse("events") + "?status=dead"}, follow=True)
    # Then it is pending again with a fresh attempt count, and the page says so
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 0
    assert "queued for delivery" in response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("events") + "?status=dead"
    # and an audit row names the replay
    entry = AuditEntry.objects.latest("id")
    assert entry.action == AuditAction.REPLAY
    assert entry.actor == owner
    assert entry.client_id == client_a.pk


def test_replay_needs_events_manage_and_tenant(client, as_user, client_a, client_b):
    _, delivery = _dead_letter(client_b)
    readonly = make_user("ro@msp.test", Role.READONLY)
    from tests.conftest import sign_in

    # A read-only user sees events but cannot replay
    web = sign_in(client, readonly)
    assert web.get(reverse("events")).status_code == 200
    assert b"Replay" not in web.get(reverse("events")).content
    assert web.post(reverse("event_replay", args=[delivery.pk])).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD


def test_replay_refuses_an_unsafe_next(as_user, owner, client_a):
    _, delivery = _dead_letter(client_a)
    response = as_user(owner).post(reverse("event_replay", args=[delivery.pk]),
                                   {"next": "https://evil.test/"})
    assert response["Location"] == reverse("event_detail", args=[delivery.event_id])


def test_event_detail_is_404_for_another_tenant(monkeypatch, client, client_a, client_b):
    from watchkeeper.core import permissions

    caps = dict(permissions.ROLE_CAPABILITIES)
    caps[Role.TECHNICIAN] = caps[Role.TECHNICIAN] | {"events.view"}
    monkeypatch.setattr(permissions, "ROLE_CAPABILITIES", caps)
    tech = make_user("t2@msp.test", Role.TECHNICIAN)
    tech.assigned_clients.add(client_a)
    event_b, _ = _dead_letter(client_b)
    event_a, _ = _dead_letter(client_a)
    from tests.conftest import sign_in

    web = sign_in(client, tech)
    assert web.get(reverse("event_detail", args=[event_b.pk])).status_code == 404
    assert web.get(reverse("event_detail", args=[event_a.pk])).status_code == 200
    body = web.get(reverse("events")).content.decode()
    assert str(event_a.pk) in body and str(event_b.pk) not in body


# --- webhooks ---------------------------------------------------------------------------

def test_webhook_secret_is_stored_encrypted_and_shown_once(as_user, owner, client_a):
    web = as_user(owner)
    # When the owner creates a webhook for client A
    response = web.post(reverse("webhook_create"), {
        "name": "Chat relay", "url": "https://hooks.example.test/in", "client": client_a.pk,
        "event_kinds": ["client.changed", "ticket.created"],
        "is_active": "on",
    })
    # Then the answer shows the secret
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = re.search(r'id="webhook-secret"[^>]*value="([^"]+)"', response.content.decode())
    assert secret, "secret not shown after create"
    secret = secret.group(1)
    assert len(secret) >= 40
    endpoint = WebhookEndpoint.objects.get(name="Chat relay")
    # and it is stored encrypted, not in clear, and decrypts to what was shown
    assert secret not in endpoint.secret_enc
    assert crypto.decrypt(endpoint.secret_enc, "webhook-secret") == secret
    assert endpoint.client == client_a
    assert endpoint.event_kinds == ["client.changed", "ticket.created"]
    # and neither the detail page, the edit page nor the audit log shows it again
    for url in (reverse("webhook_detail", args=[endpoint.pk]),
                reverse("webhook_edit", args=[endpoint.pk]), reverse("audit_log"),
                reverse("audit_entry", args=[AuditEntry.objects.latest("id").pk])):
        assert secret not in web.get(url).content.decode(), url


def test_webhook_create_validates(as_user, owner):
    response = as_user(owner).post(reverse("webhook_create"), {
        "name": "", "url": "ftp://example.test/x", "event_kinds": ["ticket.closed"],
    })
    body = response.content.decode()
    assert response.status_code == 200
    assert "Use an http:// or https:// address." in body or "Enter a valid URL." in body
    assert "ticket.closed is not one of the available choices" in body
    assert not WebhookEndpoint.objects.exists()


def test_webhook_edit_disable_and_delete(as_user, owner, client_a):
    endpoint = actions.create_webhook(actor=owner, name="Old", url="https://a.test/",
                                      secret="s", client=client_a)
    web = as_user(owner)
    # When edited
    web.post(reverse("webhook_edit", args=[endpoint.pk]), {
        "name": "New name", "url": "https://b.test/", "client": client_a.pk, "is_active": "on",
    })
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.url, endpoint.is_active) == ("New name", "https://b.test/",
                                                                  True)
    assert AuditEntry.objects.latest("id").changes["name"] == ["Old", "New name"]
    # When disabled
    web.post(reverse("webhook_toggle", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    # When the delete page is opened, it names the target
    page = web.get(reverse("webhook_delete", args=[endpoint.pk])).content.decode()
    assert "Delete webhook “New name”" in page
    # When confirmed, it is gone and audited
    web.post(reverse("webhook_delete", args=[endpoint.pk]))
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert AuditEntry.objects.latest("id").action == AuditAction.DELETE


def test_technician_cannot_manage_or_see_other_tenants_webhooks(client, tech_a, owner,
                                                               client_a, client_b):
    hook_b = actions.create_webhook(actor=owner, name="B hook", url="https://b.test/",
                                    secret="s", client=client_b)
    hook_a = actions.create_webhook(actor=owner, name="A hook", url="https://a.test/",
                                    secret="s", client=client_a)
    from tests.conftest import sign_in

    web = sign_in(client, tech_a)
    body = web.get(reverse("webhooks")).content.decode()
    assert "A hook" in body and "B hook" not in body
    assert web.get(reverse("webhook_detail", args=[hook_b.pk])).status_code == 404
    assert web.get(reverse("webhook_detail", args=[hook_a.pk])).status_code == 200
    assert web.post(reverse("webhook_delete", args=[hook_a.pk])).status_code == 403
    assert web.get(reverse("webhook_create")).status_code == 403


def test_send_test_event_targets_only_that_endpoint_and_logs_delivery(as_user, owner,
                                                                       client_a, receiver):
    # Given two endpoints of client A (a test event goes to the one tested, whatever it
    # subscribes to)
    hook = actions.create_webhook(actor=owner, name="Receiver", url=receiver.url,
                                  secret="topsecret", client=client_a,
                                  event_kinds=["site.created"])
    other = actions.create_webhook(actor=owner, name="Other", url=receiver.url + "other",
                                   secret="x", client=client_a, event_kinds=["site.created"])
    web = as_user(owner)
    # When "Send test event" is pressed and the outbox is dispatched
    response = web.post(reverse("webhook_test", args=[hook.pk]), follow=True)
    assert "Test event queued" in response.content.decode()
    event = Event.objects.get(kind="webhook.test")
    assert event.client_id == client_a.pk
    assert list(event.deliveries.values_list("handler", flat=True)) == [f"webhook:{hook.pk}"]
    events.dispatch_due()
    # Then the receiver got one signed request and the delivery log shows it
    assert len(receiver.requests) == 1
    assert receiver.requests[0]["X-Watchkeeper-Event"] == "webhook.test"
    body = web.get(reverse("webhook_detail", args=[hook.pk])).content.decode()
    log = body.split('id="delivery-log"')[1]
    assert "webhook.test" in log and "204" in log and "Delivered" in log
    assert other.deliveries.count() == 0


@pytest.fixture
def receiver():
    """A real HTTP server on loopback that records webhook requests and answers 204."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            seen.append(dict(self.headers))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Receiver:
        url = f"http://127.0.0.1:{server.server_port}/"
        requests = seen

    yield Receiver
    server.shutdown()
    server.server_close()


def test_pages_render_empty_states(as_user, owner):
    web = as_user(owner)
    assert b"No webhooks yet" in web.get(reverse("webhooks")).content
    assert b"No dead letters" in web.get(reverse("events"), {"status": "dead"}).content
    assert b"No events yet" in web.get(reverse("events")).content



def _queries(web, url, params=None) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert web.get(url, params or {}).status_code == 200
    return len(ctx.captured_queries)


def test_list_pages_query_count_does_not_grow_with_rows(as_user, owner, client_a, client_b):
    # Given a few rows of each kind
    hook = actions.create_webhook(actor=owner, name="Hook", url="https://h.test/", secret="s",
                                  client=client_a)
    for n in range(3):
        actions.update_object(actor=owner, obj=client_a, notes=f"a{n}")
        _dead_letter(client_a if n % 2 else client_b, handler=f"webhook:{hook.pk}")
    web = as_user(owner)
    pages = [reverse("audit_log"), reverse("events"), reverse("webhooks"),
             reverse("webhook_detail", args=[hook.pk])]
    few = {url: _queries(web, url) for url in pages}

    # When there are ten times as many
    for n in range(30):
        actions.update_object(actor=owner, obj=client_b, notes=f"b{n}")
        _dead_letter(client_b, handler=f"webhook:{hook.pk}")
    actions.create_webhook(actor=owner, name="Hook 2", url="https://h2.test/", secret="s")

    # Then each page runs the same number of queries
    assert {url: _queries(web, url) for url in pages} == few


def test_webhook_created_disabled_is_one_audited_write(as_user, owner):
    before = AuditEntry.objects.count()
    as_user(owner).post(reverse("webhook_create"), {
        "name": "Paused", "url": "https://p.test/",
    })
    endpoint = WebhookEndpoint.objects.get(name="Paused")
    assert endpoint.is_active is False and endpoint.client is None
    assert AuditEntry.objects.count() == before + 1
