"""API of alert ingestion: the sources (admins) and the two receiving endpoints."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.models import Client
from watchkeeper.core.tenancy import scoped

from . import actions, views
from .models import IngestSource

MANAGE = "monitoring.ingest"


class VisibleClient(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return scoped(Client.objects.all(), self.context["request"].user)


class IngestSourceSerializer(serializers.ModelSerializer):
    client = VisibleClient()

    class Meta:
        model = IngestSource
        fields = ["id", "client", "name", "prefix", "check_template", "created_at",
                  "last_used_at", "revoked_at"]
        read_only_fields = ["prefix", "check_template", "created_at", "last_used_at",
                            "revoked_at"]
        validators = []  # the action names the field of a duplicate name


class IngestSourceCreatedSerializer(IngestSourceSerializer):
    token = serializers.CharField(read_only=True,
                                  help_text="Shown once: only its SHA-256 is kept.")

    class Meta(IngestSourceSerializer.Meta):
        fields = [*IngestSourceSerializer.Meta.fields, "token"]


class IngestSourceViewSet(ScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Sources that post alerts (Alertmanager, Zabbix, Uptime Kuma, any JSON sender), each
    with its own token bound to one client. The token is in the creation's answer only."""

    queryset = IngestSource.objects.select_related("client")
    serializer_class = IngestSourceSerializer
    filterset_fields = ["client"]
    ordering = ["name", "id"]
    permissions = {"GET": MANAGE, "POST": MANAGE}

    @extend_schema(responses={201: IngestSourceCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            source, token = actions.create_source(actor=request.user,
                                                  **serializer.validated_data)
        except actions.IngestError as exc:
            field, _, message = str(exc).partition(": ")
            raise serializers.ValidationError({field: [message or str(exc)]}) from None
        data = IngestSourceCreatedSerializer(source, context={"request": request}).data
        data["token"] = token
        return Response(data, status=status.HTTP_201_CREATED,
                        headers={"Cache-Control": "no-store"})

    @extend_schema(request=None, responses={200: IngestSourceSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        source = actions.revoke_source(actor=request.user, source=self.get_object())
        return Response(self.get_serializer(source).data)


def register(router) -> None:
    router.register("monitoring/ingest-sources", IngestSourceViewSet,
                    basename="monitoring-ingest-source")


def extra_urls() -> list:
    return [
        path("ingest/alertmanager", views.receive, {"fmt": "alertmanager"},
             name="ingest-alertmanager"),
        path("ingest/alerts", views.receive, {"fmt": "generic"}, name="ingest-alerts"),
        path("ingest/uptime-kuma", views.receive, {"fmt": "uptime-kuma"},
             name="ingest-uptime-kuma"),
    ]
