"""REST API of device relations (/api/v1/device-relations/; the former
/api/v1/monitoring/dependencies/ answers too, for existing clients): list with each
relation's source, add and delete manual ones. Observed relations (agent, discovery) are
kept up to date by what observes them and cannot be written here."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, serializers, viewsets

from watchkeeper.core.api.problems import Conflict
from watchkeeper.core.api.serializers import ScopedPrimaryKeyRelatedField as VisibleField
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.models import Site

from ..models import Device
from . import actions
from .choices import RelationSource
from .models import DeviceRelation

VIEW, CHANGE = "devices.view", "devices.change"


class RelationSerializer(serializers.ModelSerializer):
    parent = VisibleField(queryset=Device.objects.all())
    device = VisibleField(queryset=Device.objects.all(), allow_null=True, required=False)
    site = VisibleField(queryset=Site.objects.all(), allow_null=True, required=False)

    class Meta:
        model = DeviceRelation
        fields = ["id", "client", "kind", "parent", "device", "site", "source", "detail",
                  "created_at", "seen_at"]
        read_only_fields = ["client", "source", "detail", "created_at", "seen_at"]
        # A relation that already exists is answered as is by the action, not refused.
        validators = []


class RelationViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = DeviceRelation.objects.all()
    serializer_class = RelationSerializer
    filterset_fields = ["client", "kind", "parent", "device", "site", "source"]
    ordering = ["id"]
    ordering_fields = ["id"]
    http_method_names = ["get", "post", "delete", "head", "options"]
    permissions = {"GET": VIEW, "POST": CHANGE, "DELETE": CHANGE}

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            serializer.instance = actions.add_relation(actor=self.request.user, **data)
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict) from exc

    def perform_destroy(self, instance):
        if instance.source != RelationSource.MANUAL:
            raise Conflict("An observed relation follows what its source sees; it cannot "
                           "be deleted by hand (add a manual one to override it).")
        actions.delete_relation(actor=self.request.user, relation=instance)


def register(router) -> None:
    router.register("device-relations", RelationViewSet, basename="device-relation")
    # Where relations lived while monitoring kept them; kept for existing API clients.
    router.register("monitoring/dependencies", RelationViewSet,
                    basename="monitoring-dependency")
