"""REST API of the monitoring app (/api/v1): alerts (bulk acknowledge, snooze, resolve by
ids or by filter), policies (versions, what-if), checks, assignments, overrides, device
groups, dependencies, maintenance windows, notification channels and their log, check states
and a device's effective checks. Reads through scoped(); writes through actions."""

from __future__ import annotations

from django.db.models import Model
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from watchkeeper.core.api.problems import Conflict
from watchkeeper.core.api.serializers import IdInputField
from watchkeeper.core.api.serializers import ScopedPrimaryKeyRelatedField as VisibleField
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.models import Client, Contact, Site
from watchkeeper.core.tenancy import can_see_client, scoped
from watchkeeper.inventory.selectors import all_devices

from . import actions, bulk, policies
from .choices import Scope
from .models import (
    Alert,
    Check,
    CheckOverride,
    CheckState,
    DeviceGroup,
    MaintenanceWindow,
    Notification,
    NotificationChannel,
    Policy,
    PolicyAssignment,
    PolicyVersion,
)

VIEW, CHANGE, ACK = "monitoring.view", "monitoring.change", "alerts.ack"


def _action(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except actions.ActionError as exc:
        raise Conflict(str(exc)) from exc




def _check_client(user, client: Client | None) -> None:
    if not can_see_client(user, client.pk if client else None):
        raise serializers.ValidationError(
            {"client": "Only roles that see every client may create MSP-wide objects."})


# --- Alerts ----------------------------------------------------------------------------------

class AlertSerializer(serializers.ModelSerializer):
    client_name = serializers.CharField(source="client.name", read_only=True, default="")
    device_name = serializers.CharField(source="device.name", read_only=True, default="")

    class Meta:
        model = Alert
        fields = ["id", "key", "client", "client_name", "device", "device_name",
                  "check_template", "check_name", "severity", "status", "summary", "count",
                  "opened_at", "last_seen_at", "resolved_at", "acknowledged_at",
                  "acknowledged_by", "snoozed_until", "suppressed", "parent", "is_flapping",
                  "escalated_at"]
        read_only_fields = fields


class AlertFilterSerializer(serializers.Serializer):
    """The alert console's filter, applied again at action time to the alerts the caller
    may see (monitoring/bulk.py)."""

    client = VisibleField(queryset=Client.objects.all(), required=False, allow_null=True)
    device = VisibleField(queryset=all_devices(), required=False, allow_null=True)
    check_template = IdInputField(required=False, allow_null=True)
    severity = serializers.ChoiceField(choices=bulk.SEVERITIES, required=False,
                                       allow_blank=True)
    status = serializers.ChoiceField(
        choices=bulk.STATUS_CHOICES, default="active",
        help_text="`active` (open, acknowledged or snoozed, the default), `any`, or one "
                  "status.")
    opened_before = serializers.DateTimeField(
        required=False, allow_null=True,
        help_text="Only alerts opened at or before this time (the moment the list was "
                  "looked at), so an alert opened since is never changed unseen.")

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown filter field."] for name in unknown})
        return super().to_internal_value(data)

    def to_filter(self, data: dict) -> bulk.AlertFilter:
        return bulk.AlertFilter.parse({
            name: getattr(value, "pk", value) for name, value in data.items()
            if value not in (None, "")})


class BulkSerializer(serializers.Serializer):
    ids = serializers.ListField(child=IdInputField(), min_length=1,
                                max_length=bulk.BULK_LIMIT, required=False,
                                help_text="The alerts to change (at most 5,000).")
    filter = AlertFilterSerializer(
        required=False, help_text="Instead of ids: every alert you can see matching this "
                                  "filter, at most 5,000 per call (newest first).")
    minutes = serializers.IntegerField(required=False, min_value=1, max_value=60 * 24 * 30)

    def validate(self, attrs):
        if ("ids" in attrs) == ("filter" in attrs):
            raise serializers.ValidationError("Send either `ids` or `filter`.")
        return attrs


class BulkResultSerializer(serializers.Serializer):
    verb = serializers.ChoiceField(choices=list(bulk.VERBS))
    mode = serializers.ChoiceField(choices=["ids", "filter"])
    matched = serializers.IntegerField(help_text="Alerts you can see that the ids or the "
                                                 "filter named at action time.")
    changed = serializers.ListField(child=serializers.IntegerField())
    changed_count = serializers.IntegerField()
    skipped = serializers.DictField(child=serializers.IntegerField(),
                                   help_text="Alerts left alone, by their status "
                                             "(already in the target status, resolved).")
    remaining = serializers.IntegerField(help_text="Filter mode: alerts that qualified "
                                                   "beyond the limit; call again for them.")
    capped = serializers.BooleanField()
    limit = serializers.IntegerField()
    unchanged = serializers.ListField(child=serializers.IntegerField(),
                                      help_text="Ids mode: the ids left alone.")
    not_found = serializers.ListField(child=serializers.IntegerField(),
                                      help_text="Ids mode: unknown ids, or another "
                                                "tenant's.")


class AlertViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Alert.objects.select_related("client", "device")
    serializer_class = AlertSerializer
    filterset_fields = ["client", "device", "severity", "status", "check_template",
                        "is_flapping", "suppressed"]
    search_fields = ["check_name", "summary", "device__name"]
    ordering_fields = ["opened_at", "last_seen_at", "severity", "count", "id"]
    ordering = ["-opened_at", "-id"]
    http_method_names = ["get", "post", "head", "options"]
    permissions = {"GET": VIEW, "POST": ACK}

    def _bulk(self, request, verb: str):
        body = BulkSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        flt = (body.fields["filter"].to_filter(data["filter"]) if "filter" in data
               else None)
        try:
            result = bulk.run(request.user, verb, ids=data.get("ids"), flt=flt,
                              minutes=data.get("minutes"))
        except bulk.BulkError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return Response(result.as_data())

    @extend_schema(request=BulkSerializer, responses=BulkResultSerializer,
                   summary="Acknowledge alerts, by ids or by filter (stops escalation)")
    @action(detail=False, methods=["post"])
    def acknowledge(self, request):
        return self._bulk(request, "acknowledge")

    @extend_schema(request=BulkSerializer, responses=BulkResultSerializer,
                   summary="Snooze alerts for `minutes`, by ids or by filter")
    @action(detail=False, methods=["post"])
    def snooze(self, request):
        return self._bulk(request, "snooze")

    @extend_schema(request=BulkSerializer, responses=BulkResultSerializer,
                   summary="Resolve alerts by hand, by ids or by filter")
    @action(detail=False, methods=["post"])
    def resolve(self, request):
        return self._bulk(request, "resolve")


# --- Policies and checks ---------------------------------------------------------------------

class PolicySerializer(serializers.ModelSerializer):
    client = VisibleField(queryset=Client.objects.all(), allow_null=True, required=False)

    class Meta:
        model = Policy
        fields = ["id", "client", "name", "description", "is_enabled", "version",
                  "ticket_severities", "ticket_resolve_on_recovery", "escalate_after_minutes",
                  "created_at", "updated_at"]
        read_only_fields = ["version", "created_at", "updated_at"]

    def validate_ticket_severities(self, value):
        from .choices import State

        if not isinstance(value, list) or any(v not in State.values for v in value):
            raise serializers.ValidationError("A list of severities.")
        return value


class WhatIfSerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=90, default=7)


class PolicyVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = PolicyVersion
        fields = ["id", "version", "snapshot", "references", "created_by", "created_at"]


class PolicyViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = Policy.objects.select_related("client")
    serializer_class = PolicySerializer
    filterset_fields = ["client", "is_enabled"]
    search_fields = ["name", "description"]
    ordering_fields = ["name", "updated_at", "id"]
    ordering = ["name", "id"]
    permissions = {"GET": VIEW, "POST": CHANGE, "PUT": CHANGE, "PATCH": CHANGE,
                   "DELETE": CHANGE}

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        _check_client(self.request.user, data.get("client"))
        serializer.instance = actions.create_policy(actor=self.request.user, **data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        if "client" in data and data["client"] != serializer.instance.client:
            raise Conflict("A policy's client cannot change; copy it instead.")
        serializer.instance = actions.update_policy(actor=self.request.user,
                                                    policy=serializer.instance, **data)

    def perform_destroy(self, instance):
        actions.delete_policy(actor=self.request.user, policy=instance)

    @extend_schema(request=WhatIfSerializer, responses={200: OpenApiTypes.OBJECT},
                   summary="Replay the policy over the stored "
                   "metrics of the last N days: how many alerts, on which devices")
    @action(detail=True, methods=["post"], url_path="what-if")
    def what_if(self, request, pk=None):
        body = WhatIfSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = self.get_object()
        visible = set(scoped(all_devices(), request.user).values_list("id", flat=True)
                      .filter(pk__in=policies.devices_of_policy(policy)))
        result = policies.what_if(policy, days=body.validated_data["days"],
                                  device_ids=sorted(visible))
        for row in result["devices"]:
            row["first_at"] = row["first_at"].isoformat() if row["first_at"] else None
        return Response(result)

    @extend_schema(responses={200: PolicyVersionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        policy = self.get_object()
        return Response(PolicyVersionSerializer(policy.versions.all()[:100], many=True).data)


class CheckSerializer(serializers.ModelSerializer):
    policy = VisibleField(queryset=Policy.objects.all())
    device = VisibleField(queryset=all_devices(), allow_null=True, required=False)

    class Meta:
        model = Check
        fields = ["id", "policy", "name", "kind", "config", "interval_seconds", "fail_after",
                  "recover_after", "is_enabled", "device", "next_run_at", "created_at"]
        read_only_fields = ["next_run_at", "created_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["config"] = actions.masked_config(instance.kind, instance.config)
        return data


class CheckViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = Check.objects.select_related("policy")
    serializer_class = CheckSerializer
    filterset_fields = ["policy", "kind", "device", "is_enabled"]
    search_fields = ["name"]
    ordering_fields = ["name", "id"]
    ordering = ["policy", "name", "id"]
    permissions = {"GET": VIEW, "POST": CHANGE, "PUT": CHANGE, "PATCH": CHANGE,
                   "DELETE": CHANGE}

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        _check_client(self.request.user, data["policy"].client)
        serializer.instance = _action(actions.add_check, actor=self.request.user, **data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        if "policy" in data and data["policy"] != serializer.instance.policy:
            raise Conflict("A check cannot move to another policy.")
        data.pop("policy", None)
        serializer.instance = _action(actions.update_check, actor=self.request.user,
                                      check=serializer.instance, **data)

    def perform_destroy(self, instance):
        actions.delete_check(actor=self.request.user, check=instance)


_TARGETS: dict[str, type[Model]] = {Scope.CLIENT: Client, Scope.SITE: Site,
                                    Scope.GROUP: DeviceGroup, Scope.DEVICE: all_devices().model}


def _target(request, scope: str, target_id):
    if scope == Scope.GLOBAL:
        if not can_see_client(request.user, None):
            raise serializers.ValidationError({"scope": "Global needs a role that sees "
                                                        "every client."})
        return None
    model = _TARGETS[scope]
    obj = scoped(model.objects.all(), request.user).filter(pk=target_id).first()
    if obj is None:
        raise serializers.ValidationError({"target": "Unknown target."})
    return obj


class AssignmentSerializer(serializers.ModelSerializer):
    policy = VisibleField(queryset=Policy.objects.all())
    target = IdInputField(write_only=True, required=False, allow_null=True)

    class Meta:
        model = PolicyAssignment
        fields = ["id", "policy", "scope", "client", "site", "group", "device", "target",
                  "created_at"]
        read_only_fields = ["client", "site", "group", "device", "created_at"]


class AssignmentViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = PolicyAssignment.objects.select_related("policy")
    serializer_class = AssignmentSerializer
    filterset_fields = ["policy", "scope", "client", "site", "group", "device"]
    ordering = ["policy", "scope", "id"]
    ordering_fields = ["id"]
    http_method_names = ["get", "post", "delete", "head", "options"]
    permissions = {"GET": VIEW, "POST": CHANGE, "DELETE": CHANGE}

    def perform_create(self, serializer):
        data = serializer.validated_data
        target = _target(self.request, data["scope"], data.get("target"))
        serializer.instance = _action(actions.assign_policy, actor=self.request.user,
                                      policy=data["policy"], scope=data["scope"],
                                      target=target)

    def perform_destroy(self, instance):
        actions.unassign_policy(actor=self.request.user, assignment=instance)


class OverrideSerializer(serializers.ModelSerializer):
    check_template = VisibleField(queryset=Check.objects.all())
    target = IdInputField(write_only=True, required=False, allow_null=True)

    class Meta:
        model = CheckOverride
        fields = ["id", "check_template", "scope", "client", "site", "group", "device",
                  "target", "is_enabled", "config", "created_at"]
        read_only_fields = ["client", "site", "group", "device", "created_at"]


class OverrideViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = CheckOverride.objects.select_related("check_template")
    serializer_class = OverrideSerializer
    filterset_fields = ["check_template", "scope", "client", "site", "group", "device"]
    ordering = ["id"]
    ordering_fields = ["id"]
    http_method_names = ["get", "post", "delete", "head", "options"]
    permissions = {"GET": VIEW, "POST": CHANGE, "DELETE": CHANGE}

    def perform_create(self, serializer):
        data = serializer.validated_data
        target = _target(self.request, data["scope"], data.get("target"))
        serializer.instance = _action(actions.set_override, actor=self.request.user,
                                      check=data["check_template"], scope=data["scope"],
                                      target=target, is_enabled=data.get("is_enabled"),
                                      config=data.get("config") or {})

    def perform_destroy(self, instance):
        actions.delete_override(actor=self.request.user, override=instance)


# --- Groups, dependencies, maintenance ------------------------------------------------------

class GroupSerializer(serializers.ModelSerializer):
    client = VisibleField(queryset=Client.objects.all())
    devices = VisibleField(queryset=all_devices(), many=True, required=False)

    class Meta:
        model = DeviceGroup
        fields = ["id", "client", "name", "devices", "created_at"]
        read_only_fields = ["created_at"]


class GroupViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = DeviceGroup.objects.prefetch_related("devices")
    serializer_class = GroupSerializer
    filterset_fields = ["client"]
    search_fields = ["name"]
    ordering = ["name", "id"]
    ordering_fields = ["name", "id"]
    permissions = {"GET": VIEW, "POST": CHANGE, "PUT": CHANGE, "PATCH": CHANGE,
                   "DELETE": CHANGE}

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = _action(actions.create_group, actor=self.request.user,
                                      client=data["client"], name=data["name"],
                                      devices=data.get("devices", []))

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        group = serializer.instance
        if "client" in data and data["client"] != group.client:
            raise Conflict("A group's client cannot change.")
        if "name" in data:
            from watchkeeper.core.actions import update_object

            group = update_object(actor=self.request.user, obj=group, name=data["name"])
        if "devices" in data:
            _action(actions.set_group_devices, actor=self.request.user, group=group,
                    devices=data["devices"])
        serializer.instance = group

    def perform_destroy(self, instance):
        from watchkeeper.core.actions import delete_object

        delete_object(actor=self.request.user, obj=instance)




class MaintenanceSerializer(serializers.ModelSerializer):
    client = VisibleField(queryset=Client.objects.all())
    site = VisibleField(queryset=Site.objects.all(), allow_null=True, required=False)
    device = VisibleField(queryset=all_devices(), allow_null=True, required=False)

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "client", "site", "device", "name", "starts_at", "duration_minutes",
                  "rrule", "created_at"]
        read_only_fields = ["created_at"]


class MaintenanceViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = MaintenanceWindow.objects.select_related("client", "site", "device")
    serializer_class = MaintenanceSerializer
    filterset_fields = ["client", "site", "device"]
    search_fields = ["name"]
    ordering = ["starts_at", "id"]
    ordering_fields = ["starts_at", "id"]
    http_method_names = ["get", "post", "delete", "head", "options"]
    permissions = {"GET": VIEW, "POST": CHANGE, "DELETE": CHANGE}

    def perform_create(self, serializer):
        serializer.instance = _action(actions.create_maintenance, actor=self.request.user,
                                      **serializer.validated_data)

    def perform_destroy(self, instance):
        actions.delete_maintenance(actor=self.request.user, window=instance)


# --- Notifications ----------------------------------------------------------------------------

class ChannelSerializer(serializers.ModelSerializer):
    client = VisibleField(queryset=Client.objects.all(), allow_null=True, required=False)
    contacts = VisibleField(queryset=Contact.objects.all(), many=True, required=False)
    url = serializers.CharField(required=False, allow_blank=True, max_length=2000,
                                write_only=True,
                                help_text="Webhook URL; answered masked (scheme and host).")
    catch_up = serializers.BooleanField(
        required=False, default=False, write_only=True,
        help_text="Also notify this channel, once each, about the alerts open now that it "
                  "matches and was never told of (sent as `alert.catchup`).")
    catch_up_available = serializers.SerializerMethodField(
        help_text="How many open alerts a catch-up would send now (null in lists).")
    caught_up = serializers.SerializerMethodField(
        help_text="Ids of the alerts this request queued for a catch-up.")

    class Meta:
        model = NotificationChannel
        fields = ["id", "client", "name", "kind", "recipients", "contacts", "url",
                  "webhook_format", "event_kinds", "min_severity", "subject_template",
                  "body_template", "digest_minutes", "next_digest_at", "is_active",
                  "created_at", "catch_up", "catch_up_available", "caught_up"]
        read_only_fields = ["next_digest_at", "created_at"]

    def get_catch_up_available(self, obj) -> int | None:
        from .channels.notify import catch_up_candidates

        view = self.context.get("view")
        if getattr(view, "action", None) == "list":
            return None  # one count per row would cost a query each
        return catch_up_candidates(obj).count()

    def get_caught_up(self, obj) -> list[int]:
        return list(getattr(obj, "caught_up", []))

    def to_representation(self, instance):
        from .channels.notify import channel_url, mask_url

        data = super().to_representation(instance)
        data["url"] = mask_url(channel_url(instance))
        return data


class CatchUpResultSerializer(serializers.Serializer):
    queued = serializers.IntegerField()
    alerts = serializers.ListField(child=serializers.IntegerField())


class ChannelViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = NotificationChannel.objects.prefetch_related("contacts")
    serializer_class = ChannelSerializer
    filterset_fields = ["client", "kind", "is_active"]
    search_fields = ["name"]
    ordering = ["name", "id"]
    ordering_fields = ["name", "id"]
    permissions = {"GET": VIEW, "POST": CHANGE, "PUT": CHANGE, "PATCH": CHANGE,
                   "DELETE": CHANGE}

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        _check_client(self.request.user, data.get("client"))
        serializer.instance = _action(actions.create_channel, actor=self.request.user,
                                      **data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        if "client" in data and data["client"] != serializer.instance.client:
            raise Conflict("A channel's client cannot change.")
        serializer.instance = _action(actions.update_channel, actor=self.request.user,
                                      channel=serializer.instance, **data)

    def perform_destroy(self, instance):
        actions.delete_channel(actor=self.request.user, channel=instance)

    @extend_schema(request=None, responses={200: CatchUpResultSerializer},
                   summary="Notify the channel, once each, about the alerts open now that "
                           "it matches and was never told of")
    @action(detail=True, methods=["post"], url_path="catch-up")
    def catch_up(self, request, pk=None):
        channel = self.get_object()
        if not channel.is_active:
            raise Conflict("The channel is switched off; switch it on to catch up.")
        ids = actions.catch_up_channel(actor=request.user, channel=channel)
        return Response({"queued": len(ids), "alerts": ids})


class NotificationSerializer(serializers.ModelSerializer):
    attempts_log = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "event", "channel", "alert", "client", "status", "attempts",
                  "subject", "last_error", "created_at", "sent_at", "attempts_log"]

    def get_attempts_log(self, obj) -> list[dict]:
        return [{"at": a.at, "ok": a.ok, "detail": a.detail}
                for a in obj.attempt_log.all()[:20]]


class NotificationViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Notification.objects.prefetch_related("attempt_log")
    serializer_class = NotificationSerializer
    filterset_fields = ["channel", "alert", "client", "status"]
    ordering = ["-created_at", "-id"]
    ordering_fields = ["created_at", "id"]
    permissions = {"GET": VIEW}


class CheckStateSerializer(serializers.ModelSerializer):
    check_name = serializers.CharField(source="check_template.name", read_only=True)

    class Meta:
        model = CheckState
        fields = ["id", "check_template", "check_name", "device", "client", "state",
                  "pending_state", "pending_count", "value", "message", "output",
                  "observed_at", "changed_at", "is_flapping"]
        read_only_fields = fields


class CheckStateViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    queryset = CheckState.objects.select_related("check_template")
    serializer_class = CheckStateSerializer
    filterset_fields = ["device", "client", "state", "check_template", "is_flapping"]
    ordering = ["id"]
    ordering_fields = ["id", "observed_at", "changed_at"]
    permissions = {"GET": VIEW}


class EffectiveChecksView(APIView):
    """The checks a device runs, each with the policy and level it came from."""

    permissions = {"GET": VIEW}
    wk_model = all_devices().model

    @extend_schema(responses={200: dict})
    def get(self, request, device_pk: int):
        device = get_object_or_404(scoped(all_devices(), request.user), pk=device_pk)
        checks = policies.effective_checks_for([device.pk], include_disabled=True)
        return Response({"device": device.pk, "checks": checks.get(device.pk, [])},
                        status=status.HTTP_200_OK)


def register(router) -> None:
    from .ingest import api as ingest_api

    ingest_api.register(router)
    router.register("alerts", AlertViewSet, basename="alert")
    router.register("monitoring/policies", PolicyViewSet, basename="monitoring-policy")
    router.register("monitoring/checks", CheckViewSet, basename="monitoring-check")
    router.register("monitoring/assignments", AssignmentViewSet,
                    basename="monitoring-assignment")
    router.register("monitoring/overrides", OverrideViewSet, basename="monitoring-override")
    router.register("monitoring/device-groups", GroupViewSet, basename="monitoring-group")
    router.register("monitoring/maintenance-windows", MaintenanceViewSet,
                    basename="monitoring-maintenance")
    router.register("monitoring/channels", ChannelViewSet, basename="monitoring-channel")
    router.register("monitoring/notifications", NotificationViewSet,
                    basename="monitoring-notification")
    router.register("monitoring/check-states", CheckStateViewSet,
                    basename="monitoring-check-state")


def extra_urls() -> list:
    from .ingest import api as ingest_api

    return [path("monitoring/devices/<id:device_pk>/effective-checks/",
                 EffectiveChecksView.as_view(), name="monitoring-effective-checks"),
            *ingest_api.extra_urls()]

