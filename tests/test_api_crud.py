"""REST API: create, read, update and delete clients, sites and contacts; every write leaves
an audit row and an event; tokens authenticate and read-scoped tokens cannot write."""

from __future__ import annotations

import pytest

from tests.factories import make_user
from watchkeeper.core import accounts, actions
from watchkeeper.core.choices import AuditAction, Role, TokenScope
from watchkeeper.core.models import AuditEntry, Client, Contact, Event, Site

pytestmark = pytest.mark.django_db


def _audit(object_type: str, object_id, action: str) -> AuditEntry:
    return AuditEntry.objects.get(object_type=object_type, object_id=str(object_id),
                                  action=action)


def _updates(object_type: str) -> int:
    return AuditEntry.objects.filter(object_type=object_type, action=AuditAction.UPDATE).count()


def test_owner_creates_reads_updates_and_deletes_a_client(as_user, owner):
    # Given a signed-in owner
    api = as_user(owner)

    # When they create a client
    created = api.post("/api/v1/clients/", {"name": "Corvid Clinics", "timezone":
                                            "Europe/Berlin"}, content_type="application/json")

    # Then it exists with a derived slug, an audit row and a client.created event
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["slug"] == "corvid-clinics"
    assert body["timezone"] == "Europe/Berlin"
    entry = _audit("core.client", body["id"], AuditAction.CREATE)
    assert entry.actor == owner
    assert entry.client_id == body["id"]
    assert Event.objects.filter(kind="client.created", client_id=body["id"]).exists()

    # When they read and update it
    url = f"/api/v1/clients/{body['id']}/"
    assert api.get(url).json()["name"] == "Corvid Clinics"
    changed = api.patch(url, {"notes": "VIP", "name": "Corvid Clinics GmbH"},
                        content_type="application/json")

    # Then the change is stored and audited field by field
    assert changed.status_code == 200, changed.content
    assert changed.json()["notes"] == "VIP"
    update = _audit("core.client", body["id"], AuditAction.UPDATE)
    assert update.changes["notes"] == ["", "VIP"]
    assert update.changes["name"] == ["Corvid Clinics", "Corvid Clinics GmbH"]
    assert Event.objects.filter(kind="client.changed", client_id=body["id"]).exists()

    # When they delete it
    deleted = api.delete(url)

    # Then it is gone, with an audit row and an event
    assert deleted.status_code == 204
    assert not Client.objects.filter(pk=body["id"]).exists()
    assert _audit("core.client", body["id"], AuditAction.DELETE).actor == owner
    assert Event.objects.filter(kind="client.deleted", payload__id=body["id"]).exists()


def test_put_replaces_a_site_and_a_noop_update_writes_no_audit_row(as_user, admin_user,
                                                                     client_a):
    # Given a site of client A
    site = actions.create_site(actor=None, client=client_a, name="HQ", address="1 Main St")
    api = as_user(admin_user)
    url = f"/api/v1/sites/{site.pk}/"

    # When an admin PUTs the full representation with a new address
    full = {"client": client_a.pk, "name": "HQ", "address": "2 High St", "timezone": "",
            "notes": ""}
    response = api.put(url, full, content_type="application/json")

    # Then the address changed and one update row was written
    assert response.status_code == 200, response.content
    assert response.json()["client_name"] == client_a.name
    site.refresh_from_db()
    assert site.address == "2 High St"
    assert _updates("core.site") == 1

    # When the same PUT is repeated
    again = api.put(url, full, content_type="application/json")

    # Then nothing changed, so no further audit row or event is written
    assert again.status_code == 200
    assert _updates("core.site") == 1
    assert Event.objects.filter(kind="site.changed").count() == 1


def test_technician_creates_a_contact_at_a_site_of_an_assigned_client(as_user, tech_a, client_a):
    # Given a site of client A and its assigned technician
    site = actions.create_site(actor=None, client=client_a, name="Branch")
    api = as_user(tech_a)

    # When the technician creates a contact there
    response = api.post("/api/v1/contacts/", {
        "client": client_a.pk, "site": site.pk, "name": "Dana Reyes",
        "email": "dana@acme.test", "phone": "+1 555 0100", "is_primary": True,
    }, content_type="application/json")

    # Then it is stored with the site and client names in the representation
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["site_name"] == "Branch" and body["client_name"] == client_a.name
    contact = Contact.objects.get(pk=body["id"])
    assert contact.site == site and contact.is_primary
    assert _audit("core.contact", contact.pk, AuditAction.CREATE).actor == tech_a
    assert Event.objects.filter(kind="contact.created", client=client_a).exists()


def test_contact_site_must_belong_to_the_contact_client(as_user, owner, client_a, client_b):
    # Given a site of client B
    site_b = actions.create_site(actor=None, client=client_b, name="Depot")
    api = as_user(owner)

    # When a contact of client A names it
    response = api.post("/api/v1/contacts/", {"client": client_a.pk, "site": site_b.pk,
                                              "name": "Sam"}, content_type="application/json")

    # Then the write is refused on the site field
    assert response.status_code == 400
    assert "site" in response.json()["errors"]
    assert not Contact.objects.exists()


def test_a_site_cannot_move_to_another_client(as_user, owner, client_a, client_b):
    # Given a site of client A
    site = actions.create_site(actor=None, client=client_a, name="HQ")
    api = as_user(owner)

    # When an owner tries to move it to client B
    response = api.patch(f"/api/v1/sites/{site.pk}/", {"client": client_b.pk},
                         content_type="application/json")

    # Then it is refused and the site stays put
    assert response.status_code == 400
    assert "client" in response.json()["errors"]
    site.refresh_from_db()
    assert site.client == client_a


def test_technician_may_edit_but_not_create_or_delete_clients(as_user, tech_a, client_a):
    # Given the technician of client A
    api = as_user(tech_a)

    # When they create a client, and delete their own
    created = api.post("/api/v1/clients/", {"name": "Rogue"}, content_type="application/json")
    deleted = api.delete(f"/api/v1/clients/{client_a.pk}/")
    edited = api.patch(f"/api/v1/clients/{client_a.pk}/", {"notes": "alarm code at desk"},
                       content_type="application/json")

    # Then creating and deleting tenants is refused, editing the assigned one works
    assert created.status_code == 403
    assert deleted.status_code == 403
    assert edited.status_code == 200
    assert Client.objects.filter(pk=client_a.pk).exists()
    assert not Client.objects.filter(name="Rogue").exists()


def test_deleting_a_client_that_still_has_sites_is_a_conflict(as_user, owner, client_a):
    # Given client A with a site
    actions.create_site(actor=None, client=client_a, name="HQ")
    api = as_user(owner)

    # When the owner deletes the client
    response = api.delete(f"/api/v1/clients/{client_a.pk}/")

    # Then the API answers 409 as problem details and nothing is deleted or audited
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 409
    assert Client.objects.filter(pk=client_a.pk).exists()
    assert not AuditEntry.objects.filter(action=AuditAction.DELETE).exists()


def test_invalid_business_hours_are_refused(as_user, owner, client_a):
    api = as_user(owner)

    response = api.patch(f"/api/v1/clients/{client_a.pk}/",
                         {"business_hours": {"1": [["18:00", "08:00"]]}},
                         content_type="application/json")

    assert response.status_code == 400
    assert "business_hours" in response.json()["errors"]


def test_bearer_token_authenticates_and_read_scope_cannot_write(client, client_a):
    # Given a dispatcher with a read token and an admin with a write token
    reader = make_user("disp@msp.test", Role.DISPATCHER)
    writer = make_user("adm2@msp.test", Role.ADMIN)
    _, read_raw = accounts.create_token(actor=reader, user=reader, name="ro",
                                        scope=TokenScope.READ)
    _, write_raw = accounts.create_token(actor=writer, user=writer, name="rw",
                                         scope=TokenScope.WRITE)

    # When each lists and creates sites with its token
    listed = client.get("/api/v1/sites/", HTTP_AUTHORIZATION=f"Bearer {read_raw}")
    refused = client.post("/api/v1/sites/", {"client": client_a.pk, "name": "X"},
                          content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {read_raw}")
    created = client.post("/api/v1/sites/", {"client": client_a.pk, "name": "Y"},
                          content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {write_raw}")

    # Then reading works, the read token cannot write, the write token can
    assert listed.status_code == 200
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This API token is read-only."
    assert created.status_code == 201, created.content
    assert list(Site.objects.values_list("name", flat=True)) == ["Y"]
    assert _audit("core.site", created.json()["id"], AuditAction.CREATE).actor == writer
