"""Query-string filters of the core API (django-filter).

Filters only narrow a queryset that `scoped()` has already narrowed to the user's tenants:
a filter naming another tenant's client simply matches nothing.
"""

from __future__ import annotations

import django_filters as filters

from ..choices import AuditAction, DeliveryStatus
from ..models import (
    AuditEntry,
    Client,
    Contact,
    Event,
    EventDelivery,
    Site,
    WebhookDelivery,
    WebhookEndpoint,
)


class SiteFilter(filters.FilterSet):
    client = filters.NumberFilter(field_name="client_id")

    class Meta:
        model = Site
        fields = ["client"]


class ContactFilter(filters.FilterSet):
    client = filters.NumberFilter(field_name="client_id")
    site = filters.NumberFilter(field_name="site_id")
    email = filters.CharFilter(field_name="email", lookup_expr="iexact")
    is_primary = filters.BooleanFilter()

    class Meta:
        model = Contact
        fields = ["client", "site", "email", "is_primary"]


class ClientFilter(filters.FilterSet):
    is_active = filters.BooleanFilter()

    class Meta:
        model = Client
        fields = ["is_active"]


class AuditFilter(filters.FilterSet):
    actor = filters.NumberFilter(field_name="actor_id")
    action = filters.ChoiceFilter(choices=AuditAction.choices)
    object_type = filters.CharFilter(field_name="object_type")
    object_id = filters.CharFilter(field_name="object_id")
    client = filters.NumberFilter(field_name="client_id")
    since = filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte",
                                      label="Entries at or after this time (ISO 8601)")
    until = filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt",
                                      label="Entries before this time (ISO 8601)")

    class Meta:
        model = AuditEntry
        fields = ["actor", "action", "object_type", "object_id", "client", "since", "until"]


class EventFilter(filters.FilterSet):
    kind = filters.CharFilter(field_name="kind")
    client = filters.NumberFilter(field_name="client_id")
    since = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    delivery_status = filters.ChoiceFilter(
        choices=DeliveryStatus.choices, field_name="deliveries__status", distinct=True,
        label="Events with at least one delivery in this status",
    )

    class Meta:
        model = Event
        fields = ["kind", "client", "since", "until", "delivery_status"]


class EventDeliveryFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=DeliveryStatus.choices)
    handler = filters.CharFilter(field_name="handler")
    event = filters.UUIDFilter(field_name="event_id")
    kind = filters.CharFilter(field_name="event__kind")
    client = filters.NumberFilter(field_name="event__client_id")

    class Meta:
        model = EventDelivery
        fields = ["status", "handler", "event", "kind", "client"]


class WebhookFilter(filters.FilterSet):
    client = filters.NumberFilter(field_name="client_id")
    is_active = filters.BooleanFilter()

    class Meta:
        model = WebhookEndpoint
        fields = ["client", "is_active"]


class WebhookDeliveryFilter(filters.FilterSet):
    success = filters.BooleanFilter()
    event = filters.UUIDFilter(field_name="event_id")

    class Meta:
        model = WebhookDelivery
        fields = ["success", "event"]
