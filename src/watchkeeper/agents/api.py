"""REST API of the agents app (/api/v1): enrollment tokens, agents (approve, reject, revoke,
delete), the script library, script runs (second approval, cancel), commands, the kill
switch and quarantined payloads. Reads through scoped(); writes through actions."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from watchkeeper.core.api.problems import Conflict
from watchkeeper.core.api.serializers import ScopedPrimaryKeyRelatedField as ScopedRelatedField
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.models import Site

from . import actions
from .installers.scripts import one_liners
from .models import (
    Agent,
    Command,
    EnrollmentToken,
    QuarantinedPayload,
)

AGENTS_VIEW, AGENTS_MANAGE = "agents.view", "agents.manage"


install_command = actions.install_command


def _action(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except actions.ActionError as exc:
        raise Conflict(str(exc)) from exc


# --- Enrollment tokens -----------------------------------------------------------------------

class EnrollmentTokenSerializer(serializers.ModelSerializer):
    state = serializers.CharField(read_only=True)
    client_name = serializers.CharField(source="client.name", read_only=True)
    site_name = serializers.CharField(source="site.name", read_only=True)
    hours = serializers.FloatField(write_only=True, required=False, min_value=0.05,
                                   max_value=720)
    site = ScopedRelatedField(queryset=Site.objects.all())

    class Meta:
        model = EnrollmentToken
        fields = ["id", "client", "client_name", "site", "site_name", "note", "prefix",
                  "auto_approve", "max_uses", "uses", "expires_at", "revoked_at", "state",
                  "created_at", "hours"]
        read_only_fields = ["client", "prefix", "uses", "expires_at", "revoked_at",
                            "created_at"]


class EnrollmentTokenViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = EnrollmentToken.objects.select_related("client", "site")
    serializer_class = EnrollmentTokenSerializer
    http_method_names = ["get", "post", "head", "options"]
    ordering_fields = ["created_at", "expires_at", "id"]
    ordering = ["-created_at"]
    search_fields = ["note", "prefix", "site__name", "client__name"]
    filterset_fields = ["client", "site", "auto_approve"]
    permissions = {"GET": AGENTS_VIEW, "POST": AGENTS_MANAGE}

    @extend_schema(summary="Create a token; the secret and install command are shown once")
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        site = data["site"]
        token, raw = _action(actions.create_enrollment_token, actor=request.user,
                             client=site.client, site=site, hours=data.get("hours"),
                             auto_approve=data.get("auto_approve", False),
                             note=data.get("note", ""), max_uses=data.get("max_uses"))
        body = self.get_serializer(token).data
        body.update({"token": raw, "install_command": install_command(raw),
                     "installers": one_liners(raw)})
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, summary="Revoke a token")
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = actions.revoke_enrollment_token(actor=request.user, token=self.get_object())
        return Response(self.get_serializer(token).data)


# --- Agents ----------------------------------------------------------------------------------

class AgentSerializer(serializers.ModelSerializer):
    client_name = serializers.CharField(source="client.name", read_only=True)
    site_name = serializers.CharField(source="site.name", read_only=True, default="")
    device_name = serializers.CharField(source="device.name", read_only=True, default="")
    fingerprint = serializers.CharField(read_only=True)

    class Meta:
        model = Agent
        fields = ["id", "uid", "client", "client_name", "site", "site_name", "device",
                  "device_name", "hostname", "fingerprint", "status", "connectivity",
                  "agent_version", "facts", "created_at", "approved_at", "last_seen_at",
                  "next_due_at", "last_seq", "last_ip", "spool_dropped"]
        read_only_fields = fields


class AgentViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Agent.objects.select_related("client", "site", "device").defer(
        "inventory_hashes")
    serializer_class = AgentSerializer
    filterset_fields = ["client", "site", "status", "connectivity"]
    search_fields = ["hostname", "uid", "last_ip"]
    ordering_fields = ["hostname", "created_at", "last_seen_at", "id"]
    ordering = ["hostname", "id"]
    http_method_names = ["get", "post", "delete", "head", "options"]
    permissions = {"GET": AGENTS_VIEW, "POST": AGENTS_MANAGE, "DELETE": AGENTS_MANAGE}

    def destroy(self, request, pk=None):
        actions.delete_agent(actor=request.user, agent=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _transition(self, func):
        agent = _action(func, actor=self.request.user, agent=self.get_object())
        agent.refresh_from_db()
        return Response(self.get_serializer(agent).data)

    @extend_schema(request=None, summary="Approve a pending agent (creates its device)")
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._transition(actions.approve_agent)

    @extend_schema(request=None, summary="Reject a pending agent")
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._transition(actions.reject_agent)

    @extend_schema(request=None, summary="Revoke an agent: refused from its next request on")
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        return self._transition(actions.revoke_agent)


# --- Commands and quarantine ----------------------------------------------------------------

class CommandSerializer(serializers.ModelSerializer):
    agent_hostname = serializers.CharField(source="agent.hostname", read_only=True)
    device = serializers.IntegerField(source="agent.device_id", read_only=True)

    class Meta:
        model = Command
        fields = ["id", "uid", "agent", "agent_hostname", "device", "run", "language", "args",
                  "timeout", "status", "created_at", "expires_at", "signed_at",
                  "delivered_at", "finished_at", "exit_code", "stdout", "stderr", "truncated",
                  "duration_ms", "reason"]
        read_only_fields = fields

    def to_representation(self, command):
        data = super().to_representation(command)
        data["args"] = actions.masked_args(command.args)
        return data


class CommandViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Command.objects.select_related("agent").defer("payload", "signature", "body")
    serializer_class = CommandSerializer
    filterset_fields = ["run", "agent", "status"]
    ordering_fields = ["created_at", "id"]
    ordering = ["-created_at"]
    permissions = {"GET": "scripts.view", "POST": "scripts.approve"}

    @extend_schema(request=None, responses={200: dict},
                   summary="Kill switch: cancel every pending command on every agent")
    @action(detail=False, methods=["post"], url_path="kill-switch")
    def kill_switch(self, request):
        cancelled = actions.kill_switch(actor=request.user)
        return Response({"cancelled": cancelled})


class QuarantineSerializer(serializers.ModelSerializer):
    class Meta:
        model = QuarantinedPayload
        fields = ["id", "agent", "received_at", "path", "remote_ip", "reason", "body"]
        read_only_fields = fields


class QuarantineViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Agent payloads refused as malformed, kept for an admin to inspect."""

    queryset = QuarantinedPayload.objects.all()
    serializer_class = QuarantineSerializer
    filterset_fields = ["agent"]
    ordering = ["-received_at"]
    permissions = {"GET": AGENTS_MANAGE}


def register(router) -> None:
    router.register("enrollment-tokens", EnrollmentTokenViewSet, basename="enrollment-token")
    router.register("agents", AgentViewSet, basename="agent")
    router.register("commands", CommandViewSet, basename="command")
    router.register("agent-quarantine", QuarantineViewSet, basename="agent-quarantine")
