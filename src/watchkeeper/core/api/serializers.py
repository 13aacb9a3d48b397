"""Serializers of the core REST API.

Related fields that point at tenant-owned rows resolve through `scoped()`, so naming a
client (or site) the user cannot see fails validation exactly like naming one that does
not exist: the API never confirms that another tenant's row exists.
"""

from __future__ import annotations

import re

from rest_framework import serializers

from .. import contact_rules
from ..converters import ID_MAX, ID_MIN, parse_id
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
from ..tenancy import can_see_client, scoped

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary-key reference limited to the rows the requesting user may see.

    The default related field of every ModelSerializer (set below), and the one to declare
    by hand. A row of a tenant the user cannot see and an id that names no row give the same
    error; a value that cannot be an id (not a whole number in 1..2**63-1) is refused before
    any query, so the database never sees it.
    """

    default_error_messages = {
        "does_not_exist": "No such object (id {pk_value}), or not one you can see.",
        "incorrect_type": f"Expected an id: a whole number from {ID_MIN} to {ID_MAX}.",
    }

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(queryset.model, "tenant_path", None) is None:
            return queryset
        request = self.context.get("request")
        return scoped(queryset, getattr(request, "user", None))

    def to_internal_value(self, data):
        if self.pk_field is None and _is_integer_pk(self) and parse_id(data) is None:
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


def _is_integer_pk(field) -> bool:
    try:
        pk = field.get_queryset().model._meta.pk
    except AttributeError:
        return True
    return pk.get_internal_type() in ("AutoField", "BigAutoField", "IntegerField",
                                      "BigIntegerField", "SmallAutoField")


# Closing the class, not the instance: every ModelSerializer's generated foreign key is scoped.
serializers.ModelSerializer.serializer_related_field = ScopedPrimaryKeyRelatedField


class ClientSerializer(serializers.ModelSerializer):
    slug = serializers.SlugField(max_length=80, required=False,
                                 help_text="Derived from the name when not given.")

    probe_networks = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=200,
        help_text="Networks (CIDR) the server's probes may reach for this client (network "
                  "checks, discovery); empty: none. Loopback and link-local need a network "
                  "of their own kind. Changed by owners and admins (clients.manage) only.")

    class Meta:
        model = Client
        fields = ["id", "name", "slug", "timezone", "business_hours", "notes", "is_active",
                  "probe_networks", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_probe_networks(self, value: list[str]) -> list[str]:
        from ..netguard import normalize_networks
        from ..permissions import has_capability

        try:
            value = normalize_networks(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        request = self.context.get("request")
        current = list(getattr(self.instance, "probe_networks", None) or [])
        if value != current and not has_capability(getattr(request, "user", None),
                                                   "clients.manage"):
            raise serializers.ValidationError(
                "Only an owner or admin can change the networks the server may probe.")
        return value

    def validate_slug(self, value: str) -> str:
        clash = Client.objects.filter(slug=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("Another client uses this slug.")
        return value

    def validate_business_hours(self, value):
        """{"1": [["08:00", "18:00"]], ...}: ISO weekday -> list of [start, end] ranges."""
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected an object keyed by ISO weekday 1-7.")
        for day, ranges in value.items():
            if day not in {str(d) for d in range(1, 8)}:
                raise serializers.ValidationError(f"{day!r} is not an ISO weekday (1-7).")
            if not isinstance(ranges, list):
                raise serializers.ValidationError(f"Day {day}: expected a list of ranges.")
            for item in ranges:
                if (not isinstance(item, list) or len(item) != 2
                        or not all(isinstance(t, str) and _HHMM.match(t) for t in item)
                        or item[0] >= item[1]):
                    raise serializers.ValidationError(
                        f"Day {day}: each range is [\"HH:MM\", \"HH:MM\"] with start < end."
                    )
        return value


class SiteSerializer(serializers.ModelSerializer):
    client = ScopedPrimaryKeyRelatedField(queryset=Client.objects.all(),
                                          help_text="Cannot change after creation.")
    client_name = serializers.CharField(source="client.name", read_only=True)

    class Meta:
        model = Site
        fields = ["id", "client", "client_name", "name", "address", "timezone", "notes",
                  "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_client(self, client):
        if self.instance is not None and client.pk != self.instance.client_id:
            raise serializers.ValidationError("A site cannot move to another client.")
        return client


class ContactSerializer(serializers.ModelSerializer):
    client = ScopedPrimaryKeyRelatedField(queryset=Client.objects.all(),
                                          help_text="Cannot change after creation.")
    client_name = serializers.CharField(source="client.name", read_only=True)
    site = ScopedPrimaryKeyRelatedField(queryset=Site.objects.all(), allow_null=True,
                                        required=False)
    site_name = serializers.CharField(source="site.name", read_only=True, allow_null=True,
                                      default=None)

    class Meta:
        model = Contact
        fields = ["id", "client", "client_name", "site", "site_name", "name", "email",
                  "phone", "title", "is_primary", "is_user", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_client(self, client):
        if self.instance is not None and client.pk != self.instance.client_id:
            raise serializers.ValidationError("A contact cannot move to another client.")
        return client

    def validate(self, attrs):
        client = attrs.get("client") or getattr(self.instance, "client", None)
        site = attrs.get("site", getattr(self.instance, "site", None))
        if site is not None and client is not None and site.client_id != client.pk:
            raise serializers.ValidationError({"site": ["The site belongs to another client."]})
        if "email" in attrs or "client" in attrs:
            request = self.context.get("request")
            email = attrs.get("email", getattr(self.instance, "email", ""))
            errors = contact_rules.check_email(getattr(request, "user", None), client, email)
            if errors:
                raise serializers.ValidationError({"email": errors})
        return attrs


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    client = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "actor_label", "ip", "action", "object_type",
                  "object_id", "object_repr", "client", "changes"]
        read_only_fields = fields


class EventDeliveryNestedSerializer(serializers.ModelSerializer):
    class Meta:
        model = EventDelivery
        fields = ["id", "handler", "status", "attempts", "next_attempt_at", "delivered_at",
                  "last_error"]
        read_only_fields = fields


class EventSerializer(serializers.ModelSerializer):
    client = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    deliveries = EventDeliveryNestedSerializer(many=True, read_only=True)

    class Meta:
        model = Event
        fields = ["id", "seq", "kind", "version", "client", "payload", "created_at", "deliveries"]
        read_only_fields = fields


class EventDeliverySerializer(serializers.ModelSerializer):
    event = serializers.PrimaryKeyRelatedField(read_only=True)
    kind = serializers.CharField(source="event.kind", read_only=True)
    client = serializers.IntegerField(source="event.client_id", read_only=True,
                                      allow_null=True)

    class Meta:
        model = EventDelivery
        fields = ["id", "event", "kind", "client", "handler", "status", "attempts",
                  "next_attempt_at", "delivered_at", "last_error"]
        read_only_fields = fields


class WebhookSerializer(serializers.ModelSerializer):
    client = ScopedPrimaryKeyRelatedField(
        queryset=Client.objects.all(), allow_null=True, required=False,
        help_text="Empty: an MSP-wide endpoint receiving events of every client.",
    )
    event_kinds = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False,
        help_text="Event kinds to send (e.g. site.created; docs/events.md lists them); "
                  "empty: all.",
    )
    secret = serializers.CharField(
        write_only=True, required=False, min_length=16, max_length=200,
        trim_whitespace=False,
        help_text="HMAC signing secret. Generated when omitted on create; returned only "
                  "in the create response.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "client", "name", "url", "event_kinds", "is_active", "created_at",
                  "secret"]
        read_only_fields = ["id", "created_at"]

    def validate_event_kinds(self, kinds):
        from watchkeeper.core import catalogue

        known = set(catalogue.kinds(subscribable=True))
        unknown = sorted(set(kinds) - known)
        if unknown:
            raise serializers.ValidationError(
                f"Not an event kind: {', '.join(unknown)} (docs/events.md lists them).")
        return sorted(set(kinds))

    def validate_client(self, client):
        request = self.context.get("request")
        if client is None and not can_see_client(getattr(request, "user", None), None):
            raise serializers.ValidationError(
                "Only staff who see every client may create MSP-wide webhooks."
            )
        return client

    def validate(self, attrs):
        if self.instance is None and "client" not in attrs:
            self.validate_client(None)
        return attrs


class WebhookCreatedSerializer(WebhookSerializer):
    """The create response: the endpoint plus its secret, shown this once."""

    secret = serializers.CharField(read_only=True,
                                   help_text="The signing secret; store it now.")

    class Meta(WebhookSerializer.Meta):
        pass


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event = serializers.PrimaryKeyRelatedField(read_only=True)
    kind = serializers.CharField(source="event.kind", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint", "event", "kind", "attempt", "at", "status_code",
                  "success", "duration_ms", "error"]
        read_only_fields = fields


class SearchResultSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="client, site, contact, or a module's kind "
                                           "such as device")
    id = serializers.IntegerField()
    name = serializers.CharField()
    client = serializers.IntegerField()
    client_name = serializers.CharField()
    detail = serializers.CharField(help_text="Address, e-mail or phone, when present.")
    title = serializers.CharField(default="", help_text="A contact's job title (search "
                                                        "finds contacts by it); empty for "
                                                        "other types.")
    url = serializers.CharField(help_text="Path of the object in this API (for modules' "
                                          "results such as devices: its UI page).")


class SearchResponseSerializer(serializers.Serializer):
    query = serializers.CharField()
    results = SearchResultSerializer(many=True)


class IdInputField(serializers.IntegerField):
    """An id given in a request body (not a relation): a whole number 1..2**63-1, refused
    before any query. Its message never depends on what exists."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", ID_MIN)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(**kwargs)
