"""REST API: webhook endpoints (secret write-only, generated and shown once) and their
delivery log."""

from __future__ import annotations

import pytest

from watchkeeper.core import actions, crypto, events, webhooks
from watchkeeper.core.choices import AuditAction
from watchkeeper.core.event_kinds import SiteCreated
from watchkeeper.core.models import AuditEntry, Event, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db
JSON = "application/json"


def test_create_generates_a_secret_and_returns_it_once(as_user, admin_user, client_a):
    api = as_user(admin_user)

    # When an admin creates a webhook without a secret
    response = api.post("/api/v1/webhooks/", {"name": "PSA sync", "url": "https://psa.test/in",
                                              "client": client_a.pk,
                                              "event_kinds": ["site.created"]},
                        content_type=JSON)

    # Then a strong secret is generated, stored encrypted, and shown in this response only
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["secret"]
    assert len(secret) >= 32
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert secret not in endpoint.secret_enc
    assert crypto.decrypt(endpoint.secret_enc, webhooks.SECRET_PURPOSE) == secret
    again = api.get(f"/api/v1/webhooks/{endpoint.pk}/").json()
    assert "secret" not in again and secret not in str(api.get("/api/v1/webhooks/").json())
    entry = AuditEntry.objects.get(object_type="core.webhookendpoint",
                                   action=AuditAction.CREATE)
    assert secret not in str(entry.changes)
    assert Event.objects.filter(kind="webhookendpoint.created").exists()


def test_create_with_a_given_secret_and_rotate_it(as_user, admin_user):
    api = as_user(admin_user)
    given = "a-very-long-shared-secret"

    created = api.post("/api/v1/webhooks/", {"name": "Global", "url": "https://g.test/",
                                             "secret": given}, content_type=JSON)
    endpoint_id = created.json()["id"]
    rotated = api.patch(f"/api/v1/webhooks/{endpoint_id}/", {"secret": "b" * 40},
                        content_type=JSON)

    assert created.status_code == 201 and created.json()["secret"] == given
    assert created.json()["client"] is None
    assert rotated.status_code == 200 and "secret" not in rotated.json()
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert crypto.decrypt(endpoint.secret_enc, webhooks.SECRET_PURPOSE) == "b" * 40
    update = AuditEntry.objects.get(object_type="core.webhookendpoint",
                                    action=AuditAction.UPDATE)
    assert update.changes["secret_enc"] == ["••••", "••••"]


def test_short_secret_and_bad_url_are_refused(as_user, admin_user):
    response = as_user(admin_user).post("/api/v1/webhooks/", {
        "name": "x", "url": "not a url", "secret": "short"}, content_type=JSON)

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"url", "secret"}
    assert not WebhookEndpoint.objects.exists()


def test_technician_sees_own_client_webhooks_but_cannot_manage(as_user, owner, tech_a,
                                                               client_a, client_b):
    # Given webhooks of A, of B and an MSP-wide one
    mine = actions.create_webhook(actor=owner, name="A hook", url="https://a.test/",
                                  secret="0123456789abcdef", client=client_a)
    actions.create_webhook(actor=owner, name="B hook", url="https://b.test/",
                           secret="0123456789abcdef", client=client_b)
    actions.create_webhook(actor=owner, name="Global", url="https://g.test/",
                           secret="0123456789abcdef")
    api = as_user(tech_a)

    # When A's technician lists and tries to change them
    listed = api.get("/api/v1/webhooks/").json()["results"]
    patched = api.patch(f"/api/v1/webhooks/{mine.pk}/", {"is_active": False},
                        content_type=JSON)

    # Then only A's is visible and changing it is refused
    assert [w["name"] for w in listed] == ["A hook"]
    assert patched.status_code == 403
    mine.refresh_from_db()
    assert mine.is_active


def test_delete_webhook(as_user, admin_user):
    endpoint = actions.create_webhook(actor=admin_user, name="Old", url="https://o.test/",
                                      secret="0123456789abcdef")

    response = as_user(admin_user).delete(f"/api/v1/webhooks/{endpoint.pk}/")

    assert response.status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert AuditEntry.objects.filter(action=AuditAction.DELETE,
                                     object_type="core.webhookendpoint").exists()


def test_delivery_log_of_an_endpoint(as_user, admin_user, client_a):
    # Given two endpoints, each with logged attempts
    first = actions.create_webhook(actor=admin_user, name="One", url="https://1.test/",
                                   secret="0123456789abcdef", client=client_a)
    other = actions.create_webhook(actor=admin_user, name="Two", url="https://2.test/",
                                   secret="0123456789abcdef", client=client_a)
    event = events.emit(SiteCreated(id=1, repr="HQ"), client=client_a)
    WebhookDelivery.objects.create(endpoint=first, event=event, attempt=1, status_code=500,
                                   error="Server error")
    WebhookDelivery.objects.create(endpoint=first, event=event, attempt=2, status_code=200,
                                   success=True)
    WebhookDelivery.objects.create(endpoint=other, event=event, attempt=1, status_code=200,
                                   success=True)
    api = as_user(admin_user)

    # When the first endpoint's log is read, all of it and only failures
    log = api.get(f"/api/v1/webhooks/{first.pk}/deliveries/?ordering=at").json()
    failures = api.get(f"/api/v1/webhooks/{first.pk}/deliveries/?success=false").json()
    missing = api.get("/api/v1/webhooks/999999/deliveries/")

    # Then it lists that endpoint's attempts only, paginated, with the event kind
    assert log["count"] == 2
    assert [(r["attempt"], r["success"], r["kind"]) for r in log["results"]] == [
        (1, False, "site.created"), (2, True, "site.created")]
    assert [r["error"] for r in failures["results"]] == ["Server error"]
    assert missing.status_code == 404


def test_create_an_inactive_webhook(as_user, admin_user):
    response = as_user(admin_user).post("/api/v1/webhooks/", {
        "name": "Paused", "url": "https://p.test/", "is_active": False}, content_type=JSON)

    assert response.status_code == 201, response.content
    assert response.json()["is_active"] is False
    assert WebhookEndpoint.objects.get(name="Paused").is_active is False


def test_an_undeclared_event_kind_is_refused(as_user, admin_user, client_a):
    api = as_user(admin_user)
    response = api.post("/api/v1/webhooks/", {"name": "PSA", "url": "https://psa.test/in",
                                              "client": client_a.pk,
                                              "event_kinds": ["ticket.closed"]},
                        content_type=JSON)
    assert response.status_code == 400
    assert "ticket.closed" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()
