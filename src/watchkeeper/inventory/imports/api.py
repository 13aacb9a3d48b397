"""REST API of imports (/api/v1/device-imports/): upload, mapping + preview, apply. Reads through
scoped(); writes through actions."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from watchkeeper.core.api.serializers import IdInputField
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.models import Client
from watchkeeper.core.tenancy import scoped

from ..api import _django_errors
from . import importers
from .models import ImportRun

VIEW, CHANGE = "devices.view", "devices.change"
CRUD = {"GET": VIEW, "POST": CHANGE, "PUT": CHANGE, "PATCH": CHANGE, "DELETE": CHANGE}


class ImportRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportRun
        fields = ["id", "client", "filename", "status", "headers", "mapping", "date_order",
                  "resolutions", "report", "created_at", "applied_at"]
        read_only_fields = fields


class ImportUploadSerializer(serializers.Serializer):
    client = IdInputField()
    file = serializers.FileField()


RESOLUTIONS_HELP = (
    "A person's decisions from the preview: 'value:<line>:<field>' -> a reading named in "
    "report.ambiguous[].options (or its value, or '' to leave the value empty); "
    "'order:<date field>' -> dmy|mdy for a column's ambiguous dates; 'mark:cost' -> ',' or "
    "'.' (the decimal separator); 'dup:<line>' (report.duplicates[].key) -> the line that "
    "wins, or 'skip'.")


class MappingSerializer(serializers.Serializer):
    mapping = serializers.DictField(child=serializers.CharField(allow_blank=True))
    date_order = serializers.ChoiceField(
        choices=["dmy", "mdy", ""], default="", help_text=(
            "How every date column reads slash dates that stay ambiguous after the column's "
            "own evidence; empty: each such value waits for a decision."))
    resolutions = serializers.DictField(child=serializers.CharField(allow_blank=True),
                                        required=False, help_text=RESOLUTIONS_HELP)


class DecideSerializer(serializers.Serializer):
    resolutions = serializers.DictField(child=serializers.CharField(allow_blank=True),
                                        help_text=RESOLUTIONS_HELP)


class ApplySerializer(serializers.Serializer):
    decisions = serializers.DictField(child=serializers.ChoiceField(choices=["keep", "take"]),
                                      required=False)
    resolutions = serializers.DictField(child=serializers.CharField(allow_blank=True),
                                        required=False, help_text=RESOLUTIONS_HELP)
    skip_undecided = serializers.BooleanField(
        default=False, help_text="Apply although decisions are open: undecided ambiguous "
                                 "values are left empty, undecided duplicate rows skipped.")


class ImportViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Spreadsheet imports: POST a file, POST its mapping (returns the preview), POST apply."""

    queryset = ImportRun.objects.all()
    serializer_class = ImportRunSerializer
    filter_backends: list = []
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    permissions = {"GET": VIEW, "POST": CHANGE}

    @extend_schema(request=ImportUploadSerializer, responses={201: ImportRunSerializer},
                   summary="Upload a CSV or XLSX file")
    def create(self, request):
        body = ImportUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        client = scoped(Client.objects.all(), request.user).filter(
            pk=body.validated_data["client"]).first()
        if client is None:
            raise exceptions.ValidationError({"client": ["Unknown client."]})
        upload = body.validated_data["file"]
        try:
            run = importers.upload(actor=request.user, client=client, filename=upload.name,
                                   raw=upload.read())
        except importers.ImportError_ as exc:
            raise exceptions.ValidationError({"file": [str(exc)]}) from exc
        return Response(ImportRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MappingSerializer, responses={200: ImportRunSerializer},
                   summary="Set the column mapping; the response holds the preview")
    @action(detail=True, methods=["post"])
    def mapping(self, request, pk=None):
        run = self.get_object()
        body = MappingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = _django_errors(importers.set_mapping, actor=request.user, run=run,
                             mapping=body.validated_data["mapping"],
                             date_order=body.validated_data["date_order"],
                             resolutions=body.validated_data.get("resolutions"))
        return Response(ImportRunSerializer(run).data)

    @extend_schema(request=DecideSerializer, responses={200: ImportRunSerializer},
                   summary="Decide ambiguous values and duplicate rows; refreshes the preview")
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        run = self.get_object()
        body = DecideSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = _django_errors(importers.decide, actor=request.user, run=run,
                             resolutions=body.validated_data["resolutions"])
        return Response(ImportRunSerializer(run).data)

    @extend_schema(request=ApplySerializer, responses={200: ImportRunSerializer},
                   summary="Apply the import; decisions: {'<device>:<field>': keep|take}")
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        run = self.get_object()
        body = ApplySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = _django_errors(importers.apply, actor=request.user, run=run,
                             decisions=body.validated_data.get("decisions") or {},
                             resolutions=body.validated_data.get("resolutions") or {},
                             skip_undecided=body.validated_data["skip_undecided"])
        return Response(ImportRunSerializer(run).data)


def register(router) -> None:
    router.register("device-imports", ImportViewSet, basename="device-import")
