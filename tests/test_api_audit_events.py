"""REST API: the audit log (read-only, filterable), the event outbox with its deliveries, and
replaying a dead letter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.event_kinds import TestHappened, TestOther
from tests.factories import make_user
from watchkeeper.core import actions, events
from watchkeeper.core.choices import AuditAction, DeliveryStatus, Role
from watchkeeper.core.models import AuditEntry, EventDelivery

pytestmark = pytest.mark.django_db


def _rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_audit_log_filters_by_actor_action_object_client_and_time(as_user, owner, admin_user,
                                                                  client_a, client_b):
    # Given writes by two people in two clients, one of them back-dated
    site = actions.create_site(actor=owner, client=client_a, name="HQ")
    actions.update_object(actor=admin_user, obj=site, address="2 Dock St")
    actions.create_site(actor=admin_user, client=client_b, name="Depot")
    old = AuditEntry.objects.get(object_type="core.site", object_id=str(site.pk),
                                 action=AuditAction.CREATE)
    AuditEntry.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=3))
    api = as_user(owner)
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()

    # When the log is filtered
    by_actor = _rows(api.get(f"/api/v1/audit/?actor={admin_user.pk}"))
    by_action = _rows(api.get("/api/v1/audit/?action=update"))
    by_object = _rows(api.get(f"/api/v1/audit/?object_type=core.site&object_id={site.pk}"))
    by_client = _rows(api.get(f"/api/v1/audit/?client={client_b.pk}"))
    since = _rows(api.get("/api/v1/audit/", {"since": yesterday, "object_type": "core.site"}))
    until = _rows(api.get("/api/v1/audit/", {"until": yesterday}))

    # Then each filter narrows as asked, newest first
    assert {r["actor_label"] for r in by_actor} == {admin_user.email}
    assert [r["changes"]["address"] for r in by_action] == [["", "2 Dock St"]]
    assert [r["action"] for r in by_object] == ["update", "create"]
    assert [r["object_repr"] for r in by_client] == ["Depot"]
    assert {r["object_repr"] for r in since} == {"HQ", "Depot"} and len(since) == 2
    assert [r["id"] for r in until] == [old.pk]


def test_audit_log_is_read_only_and_needs_audit_view(as_user, owner, tech_a, client_a):
    actions.create_site(actor=owner, client=client_a, name="HQ")
    entry = AuditEntry.objects.first()
    api = as_user(owner)

    assert api.delete(f"/api/v1/audit/{entry.pk}/").status_code == 405
    assert api.patch(f"/api/v1/audit/{entry.pk}/", {"object_repr": "x"},
                     content_type="application/json").status_code == 405
    assert as_user(tech_a).get("/api/v1/audit/").status_code == 403
    entry.refresh_from_db()
    assert entry.object_repr == "HQ"


def test_events_list_their_deliveries_and_filter_by_kind(as_user, owner, client_a):
    # Given an event with one dead delivery and one that is done
    event = events.emit(TestHappened(n=1), client=client_a)
    EventDelivery.objects.create(event=event, handler="a", status=DeliveryStatus.DEAD,
                                 attempts=8, last_error="boom")
    EventDelivery.objects.create(event=event, handler="b", status=DeliveryStatus.DONE)
    events.emit(TestOther(), client=client_a)
    api = as_user(owner)

    # When events are listed by kind and by delivery status
    by_kind = _rows(api.get("/api/v1/events/?kind=test.happened"))
    dead = _rows(api.get("/api/v1/events/?delivery_status=dead"))
    detail = api.get(f"/api/v1/events/{event.pk}/").json()

    # Then the event comes with its deliveries
    assert [r["id"] for r in by_kind] == [str(event.pk)]
    assert [r["id"] for r in dead] == [str(event.pk)]
    assert {(d["handler"], d["status"]) for d in detail["deliveries"]} == {
        ("a", "dead"), ("b", "done")}
    assert detail["payload"] == {"n": 1, "note": ""} and detail["version"] == 1


def test_replaying_a_dead_letter_requeues_it_with_an_audit_row(as_user, owner, client_a):
    # Given a dead letter
    event = events.emit(TestHappened(), client=client_a)
    dead = EventDelivery.objects.create(event=event, handler="a", status=DeliveryStatus.DEAD,
                                        attempts=8, last_error="boom")
    api = as_user(owner)

    # When the owner replays it
    response = api.post(f"/api/v1/deliveries/{dead.pk}/replay/")

    # Then it is pending again with its attempts reset, and the replay is audited
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending"
    dead.refresh_from_db()
    assert dead.status == DeliveryStatus.PENDING and dead.attempts == 0
    entry = AuditEntry.objects.get(action=AuditAction.REPLAY)
    assert entry.actor == owner and entry.client_id == client_a.pk


def test_only_dead_letters_can_be_replayed_and_only_with_events_manage(as_user, owner,
                                                                       client_a):
    event = events.emit(TestHappened(), client=client_a)
    done = EventDelivery.objects.create(event=event, handler="a", status=DeliveryStatus.DONE)
    dead = EventDelivery.objects.create(event=event, handler="b", status=DeliveryStatus.DEAD)
    reader = make_user("ro@msp.test", Role.READONLY)

    conflict = as_user(owner).post(f"/api/v1/deliveries/{done.pk}/replay/")
    forbidden = as_user(reader).post(f"/api/v1/deliveries/{dead.pk}/replay/")

    assert conflict.status_code == 409
    assert forbidden.status_code == 403
    dead.refresh_from_db()
    assert dead.status == DeliveryStatus.DEAD
    assert not AuditEntry.objects.filter(action=AuditAction.REPLAY).exists()


def test_deliveries_filter_by_status(as_user, owner, client_a):
    event = events.emit(TestHappened(), client=client_a)
    EventDelivery.objects.create(event=event, handler="a", status=DeliveryStatus.DEAD)
    EventDelivery.objects.create(event=event, handler="b", status=DeliveryStatus.DONE)

    rows = _rows(as_user(owner).get("/api/v1/deliveries/?status=dead"))

    assert [(r["handler"], r["kind"], r["client"]) for r in rows] == [
        ("a", "test.happened", client_a.pk)]
