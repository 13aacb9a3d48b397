"""REST API of network discovery (/api/v1/discoveries/): runs, found hosts, accepting a
host as a device. Reads through scoped(); writes through actions."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from watchkeeper.core.api.serializers import ScopedPrimaryKeyRelatedField as ScopedRelatedField
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.models import Client, Site

from ..api import DeviceSerializer
from ..models import Device
from . import engine as discovery
from .models import DiscoveredHost, DiscoveryRun

VIEW, CHANGE = "devices.view", "devices.change"
CRUD = {"GET": VIEW, "POST": CHANGE, "PUT": CHANGE, "PATCH": CHANGE, "DELETE": CHANGE}


class DiscoveredHostSerializer(serializers.ModelSerializer):
    class Meta:
        model = DiscoveredHost
        fields = ["id", "address", "alive", "open_ports", "snmp_name", "snmp_descr",
                  "state", "device"]
        read_only_fields = fields


class DiscoveryRunSerializer(serializers.ModelSerializer):
    hosts = DiscoveredHostSerializer(many=True, read_only=True)
    client = ScopedRelatedField(queryset=Client.objects.all())
    site = ScopedRelatedField(queryset=Site.objects.all(), allow_null=True, required=False)
    ports = serializers.ListField(child=serializers.IntegerField(min_value=1,
                                                                 max_value=65535),
                                  required=False, max_length=100)
    snmp_community = serializers.CharField(write_only=True, required=False, allow_blank=True)

    class Meta:
        model = DiscoveryRun
        fields = ["id", "client", "site", "subnet", "ports", "snmp_community", "snmp_port",
                  "status", "error", "created_at", "started_at", "finished_at", "hosts"]
        read_only_fields = ["status", "error", "created_at", "started_at", "finished_at"]


class AcceptSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[c for c, _ in Device._meta.get_field(
        "kind").choices], default="other")
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)


class DiscoveryViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    queryset = DiscoveryRun.objects.prefetch_related("hosts")
    serializer_class = DiscoveryRunSerializer
    filter_backends: list = []
    permissions = {"GET": VIEW, "POST": CHANGE}

    @extend_schema(request=DiscoveryRunSerializer, responses={201: DiscoveryRunSerializer},
                   summary="Start a discovery run on a subnet (at most a /22)")
    def create(self, request):
        body = DiscoveryRunSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            run = discovery.start_discovery(
                actor=request.user, client=data["client"], site=data.get("site"),
                subnet=data["subnet"], ports=data.get("ports"),
                snmp_community=data.get("snmp_community", ""),
                snmp_port=data.get("snmp_port", 161))
        except ValueError as exc:
            raise exceptions.ValidationError({"subnet": [str(exc)]}) from exc
        return Response(DiscoveryRunSerializer(run, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=AcceptSerializer, responses={201: DeviceSerializer},
                   summary="Accept a found host into the inventory")
    @action(detail=True, methods=["post"], url_path="hosts/<id:host_id>/accept")
    def accept(self, request, pk=None, host_id=None):
        run = self.get_object()
        host = run.hosts.filter(pk=host_id).first()
        if host is None:
            raise exceptions.NotFound()
        body = AcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            device = discovery.accept_host(actor=request.user, host=host,
                                           kind=body.validated_data["kind"],
                                           name=body.validated_data.get("name", ""))
        except ValueError as exc:
            raise exceptions.ValidationError({"host": [str(exc)]}) from exc
        return Response(DeviceSerializer(device, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


def register(router) -> None:
    router.register("discoveries", DiscoveryViewSet, basename="discovery")
