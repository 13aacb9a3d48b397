"""REST API of the poller side (/api/v1/monitoring/network-checks/...): network
(server-side) checks with "test now", their run history, value/state series and state
transitions. Reads through scoped(); writes through actions. Heartbeats: heartbeats/api.py;
metric series: rollups/api.py."""

from __future__ import annotations

from datetime import timedelta

from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from watchkeeper.core.api.problems import Conflict
from watchkeeper.core.api.serializers import ScopedPrimaryKeyRelatedField as VisibleField
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.tenancy import can_see_client
from watchkeeper.inventory.selectors import all_devices

from .. import actions
from ..choices import SERVER_KINDS
from ..history import actions as rollups
from ..history.models import PollSample, PollTransition
from ..models import Check, Policy
from . import engine as poller
from .checks import ConfigError

VIEW, CHANGE = "monitoring.view", "monitoring.change"




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
    device = VisibleField(queryset=all_devices(), allow_null=True, required=False)
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
    device = VisibleField(queryset=all_devices(), allow_null=True, required=False)


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


def register(router) -> None:
    router.register("monitoring/network-checks", NetworkCheckViewSet,
                    basename="monitoring-network-check")


def extra_urls() -> list:
    return [
        path("monitoring/network-checks/test/", TestConfigView.as_view(),
             name="monitoring-network-check-test-config"),
    ]
