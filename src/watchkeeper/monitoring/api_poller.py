"""REST API of the poller side (/api/v1/monitoring/...): network (server-side) checks with
"test now", their run history, value/state series and state transitions, passive
heartbeats with their call log, metric series at the resolution the span needs. Reads
through scoped(); writes through actions."""

from __future__ import annotations

from datetime import timedelta

from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from watchkeeper.core.api.problems import Conflict
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.models import Client
from watchkeeper.core.tenancy import can_see_client, scoped
from watchkeeper.inventory.models import Device

from . import actions, heartbeats, poller, rollups
from .choices import SERVER_KINDS
from .models import Check, Policy
from .models_poller import (
    HeartbeatJob,
    HeartbeatPing,
    HeartbeatSchedule,
    PollSample,
    PollTransition,
)
from .poller_checks import ConfigError

VIEW, CHANGE = "monitoring.view", "monitoring.change"


class VisibleField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return scoped(self.queryset.all(), self.context["request"].user)


def _sealed_config(kind: str, config: dict, instance: Check | None = None,
                   device=None) -> dict:
    """Validate as entered and seal secrets; a secret left as the mask keeps its old value
    only while the target is unchanged (poller.keep_secrets)."""
    if instance is not None:
        config = poller.keep_secrets(kind, config, instance.kind, instance.config or {},
                                     same_device=getattr(device, "pk", None)
                                     == instance.device_id)
    try:
        poller.validate_for_storage(kind, config)
    except ConfigError as exc:
        raise serializers.ValidationError({"config": str(exc)}) from None
    return poller.seal_secrets(kind, config)


# --- Network checks --------------------------------------------------------------------------

class NetworkCheckSerializer(serializers.ModelSerializer):
    policy = VisibleField(queryset=Policy.objects.all())
    device = VisibleField(queryset=Device.objects.all(), allow_null=True, required=False)
    kind = serializers.ChoiceField(choices=sorted(SERVER_KINDS))
    state = serializers.SerializerMethodField()

    class Meta:
        model = Check
        fields = ["id", "policy", "name", "kind", "config", "interval_seconds", "fail_after",
                  "recover_after", "is_enabled", "device", "next_run_at", "created_at",
                  "state"]
        read_only_fields = ["next_run_at", "created_at", "state"]

    def get_state(self, obj) -> dict | None:
        # From the prefetched rows (the list does not pay one query per check).
        states = [st for st in obj.states.all() if st.observed_at is not None]
        state = max(states, key=lambda st: st.observed_at) if states else None
        if state is None:
            return None
        return {"state": state.state, "value": state.value, "message": state.message,
                "observed_at": state.observed_at}

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["config"] = poller.masked(instance.kind, instance.config or {})
        return data

    def validate(self, attrs):
        kind = attrs.get("kind", getattr(self.instance, "kind", None))
        device = attrs.get("device", getattr(self.instance, "device", None))
        if "config" in attrs or self.instance is None:
            attrs["config"] = _sealed_config(kind, attrs.get("config") or {}, self.instance,
                                             device)
        elif "device" in attrs and device != self.instance.device:
            attrs["config"] = _sealed_config(kind, poller.masked(kind, self.instance.config
                                                                 or {}),
                                             self.instance, device)
        config = attrs.get("config", getattr(self.instance, "config", {}))
        if device is None and not any(config.get(k) for k in ("host", "url", "name",
                                                               "target")):
            raise serializers.ValidationError(
                {"config": "Name a target (host, url or name) or bind the check to a "
                           "device."})
        if attrs.get("interval_seconds", 60) < 10:
            raise serializers.ValidationError({"interval_seconds": "At least 10 seconds."})
        return attrs


class PollSampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = PollSample
        fields = ["ts", "state", "value", "message"]


class PollTransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = PollTransition
        fields = ["ts", "previous", "state", "value", "message"]


def _range(params) -> tuple:
    """(since, until, resolution or None) of a history query; a clear 400 otherwise."""
    now = timezone.now()
    until, since = params.get("until", ""), params.get("since", "")
    until_at = parse_datetime(until) if until else now
    if until_at is None:
        raise serializers.ValidationError({"until": "An ISO 8601 date and time."})
    since_at = parse_datetime(since) if since else until_at - timedelta(hours=6)
    if since_at is None:
        raise serializers.ValidationError({"since": "An ISO 8601 date and time."})
    if since_at >= until_at:
        raise serializers.ValidationError({"since": "Must be before until."})
    resolution = params.get("resolution")
    if resolution not in (None, "", "0", "300", "3600"):
        raise serializers.ValidationError({"resolution": "0, 300 or 3600."})
    return since_at, until_at, int(resolution) if resolution else None


class NetworkCheckViewSet(ScopedMixin, viewsets.ModelViewSet):
    """Server-side checks run by the poller (ping, TCP, HTTP, TLS, DNS, SNMP)."""

    queryset = (Check.objects.filter(kind__in=sorted(SERVER_KINDS)).select_related("policy")
                .prefetch_related("states"))
    serializer_class = NetworkCheckSerializer
    filterset_fields = ["policy", "kind", "device", "is_enabled"]
    search_fields = ["name"]
    ordering_fields = ["name", "id", "next_run_at"]
    ordering = ["name", "id"]
    permissions = {"GET": VIEW, "POST": CHANGE, "PUT": CHANGE, "PATCH": CHANGE,
                   "DELETE": CHANGE}

    def _guard_policy(self, policy: Policy) -> None:
        if policy.client_id is None and not can_see_client(self.request.user, None):
            raise serializers.ValidationError(
                {"policy": "Only roles that see every client may change MSP-wide policies."})

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        self._guard_policy(data["policy"])
        try:
            serializer.instance = actions.add_check(actor=self.request.user, **data)
        except actions.ActionError as exc:
            raise Conflict(str(exc)) from exc

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        if "policy" in data and data["policy"] != serializer.instance.policy:
            raise Conflict("A check cannot move to another policy.")
        data.pop("policy", None)
        self._guard_policy(serializer.instance.policy)
        try:
            serializer.instance = actions.update_check(actor=self.request.user,
                                                       check=serializer.instance, **data)
        except actions.ActionError as exc:
            raise Conflict(str(exc)) from exc

    def perform_destroy(self, instance):
        self._guard_policy(instance.policy)
        actions.delete_check(actor=self.request.user, check=instance)

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Run the check now and answer its outcome; nothing is recorded."""
        check = self.get_object()
        device = check.device
        outcome = poller.run_now(check.kind, check.config or {},
                                 device.primary_ip if device else None,
                                 device.hostname if device else None,
                                 client_id=poller.probe_client_id(policy=check.policy,
                                                                  device=device))
        return Response({"state": outcome.state, "value": outcome.value,
                         "message": outcome.message, "details": outcome.details})

    @extend_schema(responses={200: PollSampleSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def results(self, request, pk=None):
        """The latest runs (newest first; ?limit=, at most 1000)."""
        check = self.get_object()
        try:
            limit = max(1, min(int(request.query_params.get("limit", 100)), 1000))
        except ValueError:
            limit = 100
        rows = check.poll_samples.order_by("-ts", "-id")[:limit]
        return Response(PollSampleSerializer(rows, many=True).data)

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"])
    def series(self, request, pk=None):
        """Values and states over a range (?since=&until=, ISO 8601; default the last 6 h),
        as raw runs, 5-minute or hourly buckets by span (?resolution=0|300|3600 forces
        one): avg/min/max of the values, runs, runs per state and availability."""
        check = self.get_object()
        since, until, resolution = _range(request.query_params)
        used, points = rollups.check_series(check.pk, since, until, resolution)
        return Response({"check": check.pk, "resolution": used, "since": since,
                         "until": until, "points": [
                             {"ts": p.ts, "avg": p.avg, "min": p.min, "max": p.max,
                              "count": p.count, "runs": p.runs, "states": p.states,
                              "availability": p.availability} for p in points]})

    @extend_schema(responses={200: PollTransitionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def transitions(self, request, pk=None):
        """State changes between consecutive runs in a range (newest first; ?since=&until=,
        default the last 30 days; ?limit=, at most 1000). Kept long after the runs."""
        check = self.get_object()
        params = request.query_params.copy()
        if not params.get("since"):
            params["since"] = (timezone.now() - timedelta(days=30)).isoformat()
        since, until, _ = _range(params)
        try:
            limit = max(1, min(int(request.query_params.get("limit", 100)), 1000))
        except ValueError:
            raise serializers.ValidationError({"limit": "A whole number."}) from None
        rows = rollups.check_transitions(check.pk, since, until, limit)
        return Response(PollTransitionSerializer(rows, many=True).data)


class TestConfigSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=sorted(SERVER_KINDS))
    config = serializers.JSONField()
    device = VisibleField(queryset=Device.objects.all(), allow_null=True, required=False)


class TestConfigView(APIView):
    """Run a check that is not saved yet (the editor's "Test now")."""

    permissions = {"POST": CHANGE}

    @extend_schema(request=TestConfigSerializer, responses={200: dict},
                   operation_id="monitoring_network_checks_test_draft")
    def post(self, request):
        data = TestConfigSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        device = data.validated_data.get("device")
        config = data.validated_data["config"]
        if not isinstance(config, dict):
            raise serializers.ValidationError({"config": "An object."})
        outcome = poller.run_now(data.validated_data["kind"], config,
                                 device.primary_ip if device else None,
                                 device.hostname if device else None,
                                 client_id=poller.probe_client_id(device=device))
        return Response({"state": outcome.state, "value": outcome.value,
                         "message": outcome.message, "details": outcome.details})


# --- Heartbeats -------------------------------------------------------------------------

class HeartbeatSerializer(serializers.ModelSerializer):
    client = VisibleField(queryset=Client.objects.all())
    device = VisibleField(queryset=Device.objects.all(), allow_null=True, required=False)
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


# --- Metric series -------------------------------------------------------------------------

class MetricSeriesView(APIView):
    """A device's metric over a range: raw, 5-minute or hourly points by span
    (?metric=&since=&until=&resolution=0|300|3600, ISO 8601 times; default the last 6 h)."""

    permissions = {"GET": VIEW}
    wk_model = Device

    @extend_schema(responses={200: dict})
    def get(self, request, device_pk: int):
        device = get_object_or_404(scoped(Device.objects.all(), request.user), pk=device_pk)
        metric = request.query_params.get("metric", "")
        if not metric or len(metric) > 200:
            raise serializers.ValidationError({"metric": "Required."})
        now = timezone.now()
        until = parse_datetime(request.query_params.get("until", "")) or now
        since = parse_datetime(request.query_params.get("since", "")) or until - timedelta(
            hours=6)
        if since >= until:
            raise serializers.ValidationError({"since": "Must be before until."})
        resolution = request.query_params.get("resolution")
        if resolution not in (None, "", "0", "300", "3600"):
            raise serializers.ValidationError({"resolution": "0, 300 or 3600."})
        used, points = rollups.series(device.pk, metric, since, until,
                                      int(resolution) if resolution else None)
        return Response({"device": device.pk, "metric": metric, "resolution": used,
                         "since": since, "until": until,
                         "points": [{"ts": p.ts, "avg": p.avg, "min": p.min, "max": p.max,
                                     "count": p.count} for p in points]})


def register(router) -> None:
    router.register("monitoring/network-checks", NetworkCheckViewSet,
                    basename="monitoring-network-check")
    router.register("monitoring/heartbeats", HeartbeatViewSet, basename="monitoring-heartbeat")


def extra_urls() -> list:
    return [
        path("monitoring/network-checks/test/", TestConfigView.as_view(),
             name="monitoring-network-check-test-config"),
        path("monitoring/devices/<id:device_pk>/metrics/", MetricSeriesView.as_view(),
             name="monitoring-metric-series"),
    ]
