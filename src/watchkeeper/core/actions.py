"""Writes of the core app. Each action is one transaction that also writes its audit row
and its event; views, API, CLI and tasks call these and never save models themselves."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.utils import timezone
from django.utils.text import slugify

from . import audit, catalogue, crypto, events
from .choices import AuditAction, DeliveryStatus
from .event_kinds import DeliveryReplayed, WebhookTest
from .models import Client, Contact, EventDelivery, Site, WebhookEndpoint


def create_object(*, actor, model: type[models.Model], emit: bool = True,
                  **fields: Any) -> models.Model:
    """Create a row with its audit entry and `<model>.created` event."""
    with transaction.atomic():
        obj = model(**fields)
        obj.full_clean()
        obj.save()
        after = audit.snapshot(obj)
        audit.record(actor=actor, action=AuditAction.CREATE, obj=obj,
                     changes={k: [None, v] for k, v in after.items() if v not in (None, "")})
        if emit:
            events.emit(catalogue.crud_event(model, "created", id=obj.pk, repr=str(obj)),
                        client=audit.client_id_of(obj))
    return obj


def update_object(*, actor, obj: models.Model, emit: bool = True,
                  **fields: Any) -> models.Model:
    """Apply `fields` to `obj`; audit only the fields that really changed."""
    with transaction.atomic():
        before = audit.snapshot(obj)
        raw_before = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}
        for name, value in fields.items():
            setattr(obj, name, value)
        obj.full_clean()
        # Compare raw values: snapshots mask secrets, so a rotated secret looks unchanged.
        changed = [f for f in obj._meta.concrete_fields
                   if getattr(obj, f.attname) != raw_before[f.attname]]
        if not changed:
            return obj
        changes = audit.diff(before, audit.snapshot(obj))
        for f in changed:
            changes.setdefault(f.attname, [before[f.attname], "••••"])
        obj.save(update_fields=[f.name for f in changed])
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=obj, changes=changes)
        if emit:
            events.emit(catalogue.crud_event(type(obj), "changed", id=obj.pk,
                                             changed=sorted(changes)),
                        client=audit.client_id_of(obj))
    return obj


def delete_object(*, actor, obj: models.Model, emit: bool = True) -> None:
    with transaction.atomic():
        before = audit.snapshot(obj)
        client_id, pk = audit.client_id_of(obj), obj.pk
        audit.record(actor=actor, action=AuditAction.DELETE, obj=obj,
                     changes={k: [v, None] for k, v in before.items() if v not in (None, "")},
                     client_id=client_id)
        obj.delete()
        if emit:
            # A deleted client cannot be its own event's client: that row is gone.
            if getattr(type(obj), "tenant_path", None) == "id":
                client_id = None
            events.emit(catalogue.crud_event(type(obj), "deleted", id=pk), client=client_id)


# --- Clients, sites, contacts -----------------------------------------------------------

def create_client(*, actor, name: str, **fields: Any) -> Client:
    fields.setdefault("slug", _unique_slug(name))
    return create_object(actor=actor, model=Client, name=name, **fields)


def _unique_slug(name: str) -> str:
    base = slugify(name)[:70] or "client"
    slug, n = base, 2
    while Client.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def create_site(*, actor, client: Client, name: str, **fields: Any) -> Site:
    return create_object(actor=actor, model=Site, client=client, name=name, **fields)


def create_contact(*, actor, client: Client, name: str, **fields: Any) -> Contact:
    return create_object(actor=actor, model=Contact, client=client, name=name, **fields)


# --- Webhooks ---------------------------------------------------------------------------

def create_webhook(*, actor, name: str, url: str, secret: str, client: Client | None = None,
                   event_kinds: list[str] | None = None,
                   is_active: bool = True) -> WebhookEndpoint:
    return create_object(
        actor=actor, model=WebhookEndpoint, name=name, url=url, client=client,
        event_kinds=event_kinds or [], is_active=is_active,
        secret_enc=crypto.encrypt(secret, "webhook-secret"),
    )


def replay_delivery(*, actor, delivery: EventDelivery) -> EventDelivery:
    """Put a dead letter back in the queue for another round of attempts."""
    with transaction.atomic():
        EventDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(),
            locked_until=None,
        )
        audit.record(actor=actor, action=AuditAction.REPLAY, obj=delivery,
                     object_repr=f"{delivery.handler} ← {delivery.event.kind}",
                     client_id=delivery.event.client_id,
                     changes={"status": [delivery.status, DeliveryStatus.PENDING]})
        events.emit(DeliveryReplayed.of(delivery), client=delivery.event.client_id)
        transaction.on_commit(events._kick_dispatcher)
    delivery.refresh_from_db()
    return delivery


def send_webhook_test(*, actor, endpoint: WebhookEndpoint) -> EventDelivery:
    """Queue a `webhook.test` event for `endpoint` alone.

    The event belongs to the endpoint's client like any other, but only this endpoint gets
    a delivery row: a person testing one receiver must not ping every other integration
    subscribed to all kinds.
    """
    from .models import Event

    test = WebhookTest.of(endpoint)
    with transaction.atomic():
        event = Event.objects.create(kind=test.KIND, version=test.VERSION,
                                     client_id=endpoint.client_id, payload=test.payload())
        delivery = EventDelivery.objects.create(
            event=event, handler=f"webhook:{endpoint.pk}", next_attempt_at=event.created_at,
        )
        # The row written is the test event itself; the audit entry names it and its target.
        audit.record(actor=actor, action=AuditAction.CREATE, obj=event,
                     object_repr=f"webhook.test → {endpoint.name}"[:254],
                     changes={"kind": [None, event.kind], "endpoint": [None, endpoint.pk]})
        transaction.on_commit(events._kick_dispatcher)
    return delivery
