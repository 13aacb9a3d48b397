"""REST API of the inventory (/api/v1): devices (with history, provenance, software),
conflicts, licences, imports (upload, mapping + preview, apply), reconciliation and
discovery runs. Reads through scoped(); writes through actions; every route declares its
capability per method."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from watchkeeper.core.api.serializers import ScopedPrimaryKeyRelatedField as ScopedRelatedField
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.converters import filter_by_id
from watchkeeper.core.models import Client, Contact, Site

from . import actions, selectors
from .choices import ConflictStatus
from .models import (
    Device,
    DeviceChange,
    FieldConflict,
    FieldProvenance,
    SoftwareInstall,
    SoftwareLicence,
)

VIEW, CHANGE = "devices.view", "devices.change"
CRUD = {"GET": VIEW, "POST": CHANGE, "PUT": CHANGE, "PATCH": CHANGE, "DELETE": CHANGE}




class DeviceSerializer(serializers.ModelSerializer):
    client = ScopedRelatedField(queryset=Client.objects.all())
    site = ScopedRelatedField(queryset=Site.objects.all(), allow_null=True, required=False)
    assigned_contact = ScopedRelatedField(queryset=Contact.objects.all(), allow_null=True,
                                          required=False)
    online = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = ["id", "client", "site", "name", "kind", "status", "hostname", "serial",
                  "asset_tag", "manufacturer", "model", "os_name", "os_version", "primary_ip",
                  "primary_mac", "reboot_required", "pending_updates", "purchase_date",
                  "cost", "cost_currency", "warranty_end", "end_of_support",
                  "assigned_contact", "location", "notes", "source", "agent_ref",
                  "last_seen_at", "inventory_at", "created_at", "updated_at", "online"]
        read_only_fields = ["source", "agent_ref", "last_seen_at", "inventory_at",
                            "created_at", "updated_at", "reboot_required", "pending_updates",
                            "online"]

    def get_online(self, obj) -> bool:
        return selectors.is_online(obj.last_seen_at)

    def validate(self, data):
        client = data.get("client") or getattr(self.instance, "client", None)
        if self.instance is not None and "client" in data and data["client"] != \
                self.instance.client:
            raise serializers.ValidationError({"client": "A device cannot change client."})
        for name in ("site", "assigned_contact"):
            obj = data.get(name)
            if obj is not None and client is not None and obj.client_id != client.pk:
                raise serializers.ValidationError({name: "Belongs to another client."})
        return data


class ChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeviceChange
        fields = ["id", "kind", "subject", "before", "after", "source_kind", "source_ref",
                  "at"]


class ProvenanceSerializer(serializers.ModelSerializer):
    who = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = FieldProvenance
        fields = ["field", "source_kind", "source_ref", "value", "observed_at", "who"]


class SoftwareSerializer(serializers.ModelSerializer):
    class Meta:
        model = SoftwareInstall
        fields = ["name", "version", "source", "first_seen_at"]


class ConflictSerializer(serializers.ModelSerializer):
    class Meta:
        model = FieldConflict
        fields = ["id", "device", "field", "current_value", "current_source",
                  "proposed_value", "proposed_source", "proposed_ref", "status",
                  "created_at", "resolved_at"]
        read_only_fields = fields


class DeviceViewSet(ScopedMixin, viewsets.ModelViewSet):
    """Devices. List filters: q (name, serial, IP, MAC), client, site, kind, status, os,
    seen (online|offline|never), warranty (expired|soon|none), sort (name, -last_seen, ...)."""

    queryset = Device.objects.all()
    serializer_class = DeviceSerializer
    filter_backends: list = []
    permissions = CRUD
    paginated_actions = ("history", "software")  # they page like lists (core/api/schema.py)

    def get_queryset(self):
        if self.action == "list":
            return selectors.filter_devices(
                self.request.user, selectors.DeviceQuery.from_params(self.request.query_params))
        return super().get_queryset()

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        client = data.pop("client")
        serializer.instance = _django_errors(actions.create_device, actor=self.request.user,
                                             client=client, **data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("client", None)
        for name in ("site", "assigned_contact"):
            if name in data:
                obj = data.pop(name)
                data[f"{name}_id"] = obj.pk if obj else None
        serializer.instance = _django_errors(actions.update_device, actor=self.request.user,
                                             device=serializer.instance, **data)

    def perform_destroy(self, instance):
        _django_errors(actions.delete_device, actor=self.request.user, device=instance)

    @extend_schema(responses={200: ChangeSerializer(many=True)}, summary="Device history")
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        device = self.get_object()
        page = self.paginate_queryset(DeviceChange.objects.filter(device=device))
        return self.get_paginated_response(ChangeSerializer(page, many=True).data)

    @extend_schema(responses={200: ProvenanceSerializer(many=True)},
                   summary="Where each field's value came from")
    @action(detail=True, methods=["get"])
    def provenance(self, request, pk=None):
        device = self.get_object()
        rows = FieldProvenance.objects.filter(device=device).select_related("who")
        return Response(ProvenanceSerializer(rows, many=True).data)

    @extend_schema(responses={200: SoftwareSerializer(many=True)}, summary="Installed software")
    @action(detail=True, methods=["get"])
    def software(self, request, pk=None):
        device = self.get_object()
        page = self.paginate_queryset(SoftwareInstall.objects.filter(device=device))
        return self.get_paginated_response(SoftwareSerializer(page, many=True).data)

    @extend_schema(responses={200: OpenApiTypes.OBJECT},
                   summary="Inventory sections as last reported")
    @action(detail=True, methods=["get"])
    def inventory(self, request, pk=None):
        device = self.get_object()
        return Response({s.section: {"hash": s.hash, "observed_at": s.observed_at,
                                     "data": s.data} for s in device.sections.all()})


def _django_errors(func, **kwargs):
    try:
        return func(**kwargs)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "message_dict") else exc.messages) from exc


class ResolveSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=["keep", "take"])


class ConflictViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Values sources disagree on; `?status=open` (default: all)."""

    queryset = FieldConflict.objects.all()
    serializer_class = ConflictSerializer
    filter_backends: list = []
    permissions = {"GET": VIEW, "POST": CHANGE}

    def get_queryset(self):
        qs = super().get_queryset()
        status_ = self.request.query_params.get("status")
        if status_ in ConflictStatus.values:
            qs = qs.filter(status=status_)
        device = self.request.query_params.get("device", "")
        if device:
            qs = filter_by_id(qs, "device_id", device)
        return qs

    @extend_schema(request=ResolveSerializer, responses={200: ConflictSerializer},
                   summary="Keep the current value or take the proposed one")
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        conflict = self.get_object()
        body = ResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conflict = _django_errors(actions.resolve_conflict, actor=request.user,
                                  conflict=conflict, choice=body.validated_data["choice"])
        return Response(ConflictSerializer(conflict).data)


class LicenceSerializer(serializers.ModelSerializer):
    client = ScopedRelatedField(queryset=Client.objects.all())
    key = serializers.CharField(write_only=True, required=False, allow_blank=True)
    has_key = serializers.SerializerMethodField()
    seats_used = serializers.SerializerMethodField()

    class Meta:
        model = SoftwareLicence
        fields = ["id", "client", "product", "match", "seats", "seats_used", "expires_at",
                  "notes", "key", "has_key", "created_at"]
        read_only_fields = ["created_at"]

    def get_has_key(self, obj) -> bool:
        return bool(obj.key_enc)

    def get_seats_used(self, obj) -> int:
        used = getattr(obj, "used", None)
        if used is None:
            used = selectors.with_seat_usage(
                SoftwareLicence.objects.filter(pk=obj.pk)).values_list("used", flat=True)[0]
        return used


class LicenceViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = SoftwareLicence.objects.all()
    serializer_class = LicenceSerializer
    filter_backends: list = []
    permissions = CRUD

    def get_queryset(self):
        return selectors.with_seat_usage(super().get_queryset())

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = actions.create_licence(actor=self.request.user,
                                                     client=data.pop("client"),
                                                     key=data.pop("key", ""), **data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("client", None)
        key = data.pop("key", None)
        serializer.instance = actions.update_licence(actor=self.request.user,
                                                     licence=serializer.instance, key=key,
                                                     **data)

    def perform_destroy(self, instance):
        actions.delete_licence(actor=self.request.user, licence=instance)


class ReconciliationViewSet(viewsets.ViewSet):
    """Devices with no agent, duplicates, devices not seen for `days`, open conflicts and
    fields where sources disagree."""

    permissions = {"GET": VIEW}

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Reconciliation lists")
    def list(self, request):
        user = request.user
        try:
            days = max(1, min(int(request.query_params.get("days", 30)), 3650))
        except ValueError:
            raise exceptions.ValidationError({"days": ["Must be a number."]}) from None

        def brief(d):
            return {"id": d.pk, "name": d.name, "client": d.client_id,
                    "last_seen_at": d.last_seen_at}

        return Response({
            "days": days,
            "devices_without_agent": [brief(d) for d in
                                      selectors.devices_without_agent(user)[:500]],
            "not_seen": [brief(d) for d in selectors.not_seen_since(user, days)[:500]],
            "duplicates": [{"by": g["by"], "value": g["value"],
                            "devices": [brief(d) for d in g["devices"]]}
                           for g in selectors.duplicates(user)],
            "conflicts": ConflictSerializer(selectors.open_conflicts(user)[:500],
                                            many=True).data,
            "disagreements": [{"device": g["device"].pk, "field": g["field"],
                               "values": ProvenanceSerializer(g["values"], many=True).data}
                              for g in selectors.disagreeing_fields(user)],
            "agents_without_device": [str(a) for a in selectors.agents_without_device(user)],
        })


def register(router) -> None:
    router.register("devices", DeviceViewSet, basename="device")
    router.register("device-conflicts", ConflictViewSet, basename="device-conflict")
    router.register("licences", LicenceViewSet, basename="licence")
    router.register("reconciliation", ReconciliationViewSet, basename="reconciliation")
