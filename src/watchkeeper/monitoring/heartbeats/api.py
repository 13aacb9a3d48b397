"""REST API of passive heartbeats (/api/v1/monitoring/heartbeats/) with their call log.
Reads through scoped(); writes through heartbeats/actions.py."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from watchkeeper.core.api.problems import Conflict
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.models import Client
from watchkeeper.inventory.selectors import all_devices

from ..api import CHANGE, VIEW, VisibleField
from . import actions as heartbeats
from .models import HeartbeatJob, HeartbeatPing, HeartbeatSchedule


class HeartbeatSerializer(serializers.ModelSerializer):
    client = VisibleField(queryset=Client.objects.all())
    device = VisibleField(queryset=all_devices(), allow_null=True, required=False)
    url = serializers.SerializerMethodField()
    schedule = serializers.ChoiceField(choices=HeartbeatSchedule.choices,
                                       default=HeartbeatSchedule.PERIOD)

    class Meta:
        model = HeartbeatJob
        fields = ["id", "client", "device", "name", "url", "schedule", "period_seconds",
                  "cron", "tz", "grace_seconds", "status", "last_ping_at", "last_start_at",
                  "last_fail_at", "expected_at", "pings", "check_template", "created_at"]
        read_only_fields = ["status", "last_ping_at", "last_start_at", "last_fail_at",
                            "expected_at", "pings", "check_template", "created_at"]

    def get_url(self, obj) -> str:
        return heartbeats.ping_url(obj)


class HeartbeatPingSerializer(serializers.ModelSerializer):
    class Meta:
        model = HeartbeatPing
        fields = ["at", "kind", "remote_ip", "user_agent", "body"]


def _hb(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except heartbeats.HeartbeatError as exc:
        field, _, message = str(exc).partition(": ")
        raise serializers.ValidationError({field: message or str(exc)}) from None


class HeartbeatViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = HeartbeatJob.objects.select_related("client")
    serializer_class = HeartbeatSerializer
    filterset_fields = ["client", "status", "device"]
    search_fields = ["name"]
    ordering_fields = ["name", "id", "last_ping_at"]
    ordering = ["name", "id"]
    permissions = {"GET": VIEW, "POST": CHANGE, "PUT": CHANGE, "PATCH": CHANGE,
                   "DELETE": CHANGE}

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = _hb(heartbeats.create_heartbeat, actor=self.request.user, **data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        for fixed in ("client", "device"):
            if fixed in data and data[fixed] != getattr(serializer.instance, fixed):
                raise Conflict(f"A heartbeat's {fixed} cannot change.")
            data.pop(fixed, None)
        serializer.instance = _hb(heartbeats.update_heartbeat, actor=self.request.user,
                                  job=serializer.instance, **data)

    def perform_destroy(self, instance):
        heartbeats.delete_heartbeat(actor=self.request.user, job=instance)

    @extend_schema(responses={200: HeartbeatPingSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def pings(self, request, pk=None):
        job = self.get_object()
        rows = job.ping_log.order_by("-at", "-id")[:100]
        return Response(HeartbeatPingSerializer(rows, many=True).data)

    @extend_schema(request=None, responses={200: HeartbeatSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        job = heartbeats.pause_heartbeat(actor=request.user, job=self.get_object())
        return Response(self.get_serializer(job).data)

    @extend_schema(request=None, responses={200: HeartbeatSerializer})
    @action(detail=True, methods=["post"], url_path="regenerate-url")
    def regenerate_url(self, request, pk=None):
        job = heartbeats.regenerate_url(actor=request.user, job=self.get_object())
        return Response(self.get_serializer(job).data)


def register(router) -> None:
    router.register("monitoring/heartbeats", HeartbeatViewSet, basename="monitoring-heartbeat")
