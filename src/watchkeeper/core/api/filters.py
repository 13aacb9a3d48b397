"""Query-string filters of the API (django-filter).

Filters only narrow a queryset that `scoped()` has already narrowed to the user's tenants:
a filter naming another tenant's client simply matches nothing — exactly like an id that
does not exist. So no id filter may look its value up: `IdFilter` (every relation and id of
every FilterSet, declared or generated from `filterset_fields`) only checks that the value
is a 64-bit id and filters by it; django-filter's ModelChoiceFilter would answer "Select a
valid choice" for a missing id and nothing for another client's, an existence oracle.
"""

from __future__ import annotations

import django_filters as filters
from django.db import models
from django.db.models.fields.related import ManyToManyRel, ManyToOneRel, OneToOneRel
from django_filters import rest_framework as drf_filters
from drf_spectacular.utils import extend_schema_field

from ..choices import AuditAction, DeliveryStatus
from ..converters import ID_MAX, ID_MIN, BoundedIntegerField, IdField
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


@extend_schema_field({"type": "integer", "format": "int64", "minimum": ID_MIN,
                      "maximum": ID_MAX})
class IdFilter(filters.Filter):
    """`?client=<id>`: a whole number 1..2**63-1, never looked up (see the module doc)."""

    field_class = IdField


@extend_schema_field({"type": "integer", "format": "int64", "minimum": -(2**63),
                      "maximum": 2**63 - 1})
class IntegerFilter(filters.Filter):
    """A whole-number filter within 64-bit bounds (no Decimal: 1e30 is refused, not sent)."""

    field_class = BoundedIntegerField


_ID = {"filter_class": IdFilter}
_INT = {"filter_class": IntegerFilter}


class FilterSet(drf_filters.FilterSet):
    """The base of every API FilterSet: relations and ids by `IdFilter`, integers bounded."""

    FILTER_DEFAULTS = {
        **drf_filters.FilterSet.FILTER_DEFAULTS,
        models.AutoField: _ID, models.BigAutoField: _ID, models.SmallAutoField: _ID,
        models.ForeignKey: _ID, models.OneToOneField: _ID, models.ManyToManyField: _ID,
        OneToOneRel: _ID, ManyToOneRel: _ID, ManyToManyRel: _ID,
        models.IntegerField: _INT, models.SmallIntegerField: _INT,
        models.BigIntegerField: _INT, models.PositiveIntegerField: _INT,
        models.PositiveSmallIntegerField: _INT, models.PositiveBigIntegerField: _INT,
    }


class FilterBackend(drf_filters.DjangoFilterBackend):
    """DjangoFilterBackend whose generated FilterSets (`filterset_fields`) use ours."""

    filterset_base = FilterSet



class SiteFilter(FilterSet):
    client = IdFilter(field_name="client_id")

    class Meta:
        model = Site
        fields = ["client"]


class ContactFilter(FilterSet):
    client = IdFilter(field_name="client_id")
    site = IdFilter(field_name="site_id")
    email = filters.CharFilter(field_name="email", lookup_expr="iexact")
    is_primary = filters.BooleanFilter()

    class Meta:
        model = Contact
        fields = ["client", "site", "email", "is_primary"]


class ClientFilter(FilterSet):
    is_active = filters.BooleanFilter()

    class Meta:
        model = Client
        fields = ["is_active"]


class AuditFilter(FilterSet):
    actor = IdFilter(field_name="actor_id")
    action = filters.ChoiceFilter(choices=AuditAction.choices)
    object_type = filters.CharFilter(field_name="object_type")
    object_id = filters.CharFilter(field_name="object_id")
    client = IdFilter(field_name="client_id")
    since = filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte",
                                      label="Entries at or after this time (ISO 8601)")
    until = filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt",
                                      label="Entries before this time (ISO 8601)")

    class Meta:
        model = AuditEntry
        fields = ["actor", "action", "object_type", "object_id", "client", "since", "until"]


class EventFilter(FilterSet):
    kind = filters.CharFilter(field_name="kind")
    client = IdFilter(field_name="client_id")
    since = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    delivery_status = filters.ChoiceFilter(
        choices=DeliveryStatus.choices, field_name="deliveries__status", distinct=True,
        label="Events with at least one delivery in this status",
    )

    class Meta:
        model = Event
        fields = ["kind", "client", "since", "until", "delivery_status"]


class EventDeliveryFilter(FilterSet):
    status = filters.ChoiceFilter(choices=DeliveryStatus.choices)
    handler = filters.CharFilter(field_name="handler")
    event = filters.UUIDFilter(field_name="event_id")
    kind = filters.CharFilter(field_name="event__kind")
    client = IdFilter(field_name="event__client_id")

    class Meta:
        model = EventDelivery
        fields = ["status", "handler", "event", "kind", "client"]


class WebhookFilter(FilterSet):
    client = IdFilter(field_name="client_id")
    is_active = filters.BooleanFilter()

    class Meta:
        model = WebhookEndpoint
        fields = ["client", "is_active"]


class WebhookDeliveryFilter(FilterSet):
    success = filters.BooleanFilter()
    event = filters.UUIDFilter(field_name="event_id")

    class Meta:
        model = WebhookDelivery
        fields = ["success", "event"]
