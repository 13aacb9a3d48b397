"""REST API of patch state (read-only): available updates, per-device patch state and
compliance per client with MSP-wide totals. Reads through scoped()/selectors."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from watchkeeper.core.api.views import ScopedMixin

from . import selectors
from .models import DevicePatchState, DeviceUpdate

VIEW = "devices.view"


class DeviceUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeviceUpdate
        fields = ["id", "device", "client", "name", "arch", "installed_version", "version",
                  "classification", "source", "origin", "archive", "site", "severity",
                  "references", "size", "reboot", "release_date", "first_seen_at",
                  "last_seen_at"]
        read_only_fields = fields


class DeviceUpdateViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Every available update per device, as its agent last reported it."""

    queryset = DeviceUpdate.objects.all()
    serializer_class = DeviceUpdateSerializer
    filterset_fields = ["device", "client", "classification", "source", "severity",
                        "reboot", "name"]
    ordering_fields = ["name", "first_seen_at", "classification"]
    ordering = ["name", "device"]
    permissions = {"GET": VIEW}


class PatchStateSerializer(serializers.ModelSerializer):
    days_behind = serializers.SerializerMethodField()

    class Meta:
        model = DevicePatchState
        fields = ["device", "client", "reported_at", "available", "security",
                  "oldest_security_at", "days_behind", "reboot_pending", "changed_at"]
        read_only_fields = fields

    def get_days_behind(self, obj) -> int | None:
        return selectors.days_behind(obj.oldest_security_at)


COMPLIANCE_ROW = {
    "client_id": serializers.IntegerField(), "client": serializers.CharField(),
    "devices": serializers.IntegerField(), "not_reporting": serializers.IntegerField(),
    "missing_devices": serializers.IntegerField(),
    "missing_security": serializers.IntegerField(), "available": serializers.IntegerField(),
    "days_behind": serializers.IntegerField(allow_null=True),
    "reboot_pending": serializers.IntegerField(),
}


class PatchStateViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Per device: available and missing security updates, days behind the oldest missing
    security update, reboot pending, when it last reported."""

    queryset = DevicePatchState.objects.all()
    serializer_class = PatchStateSerializer
    filterset_fields = ["client", "reboot_pending"]
    ordering_fields = ["security", "available", "reported_at", "oldest_security_at"]
    ordering = ["-security", "device"]
    permissions = {"GET": VIEW}

    @extend_schema(
        summary="Compliance per client and MSP-wide",
        parameters=[OpenApiParameter("client", int, description="only this client")],
        responses={200: inline_serializer("PatchCompliance", {
            "clients": inline_serializer("PatchComplianceClient", COMPLIANCE_ROW, many=True),
            "total": inline_serializer("PatchComplianceTotal", {
                k: v for k, v in COMPLIANCE_ROW.items()
                if k not in ("client_id", "client")})})})
    @action(detail=False, methods=["get"])
    def compliance(self, request):
        rows = selectors.client_compliance(request.user)
        client = request.query_params.get("client", "")
        if client.isdigit():
            rows = [r for r in rows if r["client_id"] == int(client)]
        return Response({"clients": rows, "total": selectors.msp_compliance(rows)})


def register(router) -> None:
    router.register("patching/updates", DeviceUpdateViewSet, basename="patching-update")
    router.register("patching/states", PatchStateViewSet, basename="patching-state")
