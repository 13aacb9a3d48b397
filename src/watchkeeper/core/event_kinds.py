"""The events of the core app (its `events.py` is the outbox itself, so its declarations
live here). See core.catalogue and docs/development.md, 'Events'."""

from __future__ import annotations

from .catalogue import EventData, declare


@declare("webhook.test")
class WebhookTest(EventData):
    """A person sent a test event to one webhook endpoint (delivered to it alone)."""

    endpoint_id: int
    name: str
    message: str

    @classmethod
    def of(cls, endpoint) -> WebhookTest:
        return cls(endpoint_id=endpoint.pk, name=endpoint.name,
                   message="Test event sent from Watchkeeper.")


@declare("delivery.replayed")
class DeliveryReplayed(EventData):
    """A person put a dead-lettered delivery back in the queue."""

    id: int
    handler: str
    event_id: str
    event_kind: str

    @classmethod
    def of(cls, delivery) -> DeliveryReplayed:
        return cls(id=delivery.pk, handler=delivery.handler, event_id=str(delivery.event_id),
                   event_kind=delivery.event.kind)
