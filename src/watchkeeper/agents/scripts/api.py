"""REST API of the script library (/api/v1/scripts/, /api/v1/script-runs/): scripts and
their versions, runs (second approval, cancel). Reads through scoped(); writes through
agents/actions.py."""

from __future__ import annotations

from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from watchkeeper.core.api.serializers import ScopedPrimaryKeyRelatedField as ScopedRelatedField
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.models import Client, Site
from watchkeeper.core.permissions import has_capability
from watchkeeper.core.tenancy import scoped

from .. import actions
from ..api import _action
from ..choices import ScriptLanguage, TargetKind
from .models import Script, ScriptRun, ScriptVersion


class ParameterSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    required = serializers.BooleanField(default=False)
    default = serializers.CharField(allow_blank=True, default="")
    description = serializers.CharField(allow_blank=True, default="", max_length=200)
    secret = serializers.BooleanField(
        default=False, help_text="Value stored encrypted and shown masked (e.g. a password).")


class ScriptSerializer(serializers.ModelSerializer):
    language = serializers.ChoiceField(choices=ScriptLanguage.choices)
    body = serializers.CharField(trim_whitespace=False)
    parameters = ParameterSerializer(many=True, required=False)
    timeout = serializers.IntegerField(min_value=1, max_value=3600, default=300)
    version = serializers.IntegerField(read_only=True)

    class Meta:
        model = Script
        fields = ["id", "name", "description", "language", "body", "parameters", "timeout",
                  "version", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def to_representation(self, script):
        # The versioned fields come from the script's current version.
        data = {"id": script.pk, "name": script.name, "description": script.description,
                "created_at": script.created_at, "updated_at": script.updated_at}
        current = script.current
        if current is not None:
            data.update({"language": current.language, "body": current.body,
                         "parameters": current.parameters, "timeout": current.timeout,
                         "version": current.version, "version_id": current.pk})
        return data


class ScriptViewSet(viewsets.ModelViewSet):
    """The MSP-wide script library (not tenant-owned). Editing makes a new version."""

    queryset = Script.objects.all()
    serializer_class = ScriptSerializer
    search_fields = ["name", "description"]
    ordering_fields = ["name", "updated_at", "id"]
    ordering = ["name"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    permissions = {"GET": "scripts.view", "POST": "scripts.change", "PUT": "scripts.change",
                   "PATCH": "scripts.change"}

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = _action(
            actions.create_script, actor=self.request.user, name=data["name"],
            language=data["language"], body=data["body"],
            description=data.get("description", ""),
            parameters=[dict(p) for p in data.get("parameters", [])],
            timeout=data.get("timeout", 300))

    def perform_update(self, serializer):
        data = serializer.validated_data
        script = serializer.instance
        current = script.current
        _action(actions.update_script, actor=self.request.user, script=script,
                body=data.get("body", current.body), language=data.get("language"),
                parameters=([dict(p) for p in data["parameters"]]
                            if "parameters" in data else None),
                description=data.get("description"), timeout=data.get("timeout"))


class ScriptRunSerializer(serializers.ModelSerializer):
    script = ScopedRelatedField(queryset=Script.objects.all(), write_only=True)
    script_version = ScopedRelatedField(
        queryset=ScriptVersion.objects.all(), write_only=True,
        help_text="The version the requester reviewed (`version_id` of the script); the run "
                  "is refused with 409 if the script changed since.")
    script_name = serializers.CharField(source="script_version.script.name", read_only=True)
    version = serializers.IntegerField(source="script_version.version", read_only=True)
    target_kind = serializers.ChoiceField(choices=TargetKind.choices)
    parameters = serializers.DictField(child=serializers.CharField(allow_blank=True),
                                       required=False)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = ScriptRun
        fields = ["id", "script", "script_version", "script_name", "version", "client",
                  "target_kind",
                  "target_id", "target_label", "parameters", "status", "needs_approval",
                  "agent_count", "requested_by", "approved_by", "created_at", "approved_at",
                  "counts"]
        read_only_fields = ["client", "target_label", "status", "needs_approval",
                            "agent_count", "requested_by", "approved_by", "created_at",
                            "approved_at"]

    def get_counts(self, run) -> dict[str, int]:
        return dict(run.commands.values_list("status").annotate(n=Count("id")))

    def validate(self, attrs):
        if attrs["script_version"].script_id != attrs["script"].pk:
            raise serializers.ValidationError(
                {"script_version": ["This version belongs to another script."]})
        return attrs

    def to_representation(self, run):
        data = super().to_representation(run)
        data["parameters"] = actions.masked_parameters(run.parameters)
        return data


TARGET_MODELS = {TargetKind.DEVICE: "inventory.Device", TargetKind.SITE: Site,
                 TargetKind.CLIENT: Client}


class ScriptRunViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = ScriptRun.objects.select_related("script_version__script")
    serializer_class = ScriptRunSerializer
    http_method_names = ["get", "post", "head", "options"]
    filterset_fields = ["client", "status", "target_kind"]
    ordering_fields = ["created_at", "id"]
    ordering = ["-created_at"]
    permissions = {"GET": "scripts.view", "POST": "scripts.run"}

    @extend_schema(summary="Run a script on a device, a site or a client's devices")
    def create(self, request, *args, **kwargs):
        from django.apps import apps

        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model = TARGET_MODELS[data["target_kind"]]
        model = apps.get_model(model) if isinstance(model, str) else model
        target = scoped(model.objects.all(), request.user).filter(pk=data["target_id"]).first()
        if target is None:
            raise exceptions.ValidationError({"target_id": ["Unknown target."]})
        version = data["script_version"]
        run = _action(actions.run_script, actor=request.user, version=version,
                      target_kind=data["target_kind"], target=target,
                      parameters=data.get("parameters", {}))
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, summary="Second person's approval of a large job")
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        if not has_capability(request.user, "scripts.approve"):
            raise exceptions.PermissionDenied("Approving large jobs needs scripts.approve.")
        run = _action(actions.approve_run, actor=request.user, run=self.get_object())
        return Response(self.get_serializer(run).data)

    @extend_schema(request=None, summary="Cancel every command of this run not yet finished")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        actions.cancel_run(actor=request.user, run=run)
        run.refresh_from_db()
        return Response(self.get_serializer(run).data)


def register(router) -> None:
    router.register("scripts", ScriptViewSet, basename="script")
    router.register("script-runs", ScriptRunViewSet, basename="script-run")
