"""REST API of contracts and billing (/api/v1): contracts with prepaid burn-down, billing
runs (create, recompute, approve = lock, export CSV/JSON) and their lines with evidence."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.models import Client
from watchkeeper.core.tenancy import scoped

from ..api import ScopedRelatedField, _django_errors
from ..time.api import Locked
from . import actions as billing
from . import contracts
from .choices import ContractKind, RunStatus
from .models import BillingLine, BillingRun, Contract

VIEW, MANAGE = "billing.view", "billing.manage"




class ContractSerializer(serializers.ModelSerializer):
    client = ScopedRelatedField(queryset=Client.objects.all())
    client_name = serializers.CharField(source="client.name", read_only=True)
    burn_down = serializers.SerializerMethodField()

    class Meta:
        model = Contract
        fields = ["id", "client", "client_name", "name", "kind", "starts_on", "ends_on",
                  "unit_price", "device_kinds", "hours", "overage_rate", "rates",
                  "is_active", "notes", "created_at", "burn_down"]
        read_only_fields = ["created_at"]

    def get_burn_down(self, obj) -> dict | None:
        if obj.kind != ContractKind.PREPAID:
            return None
        return {k: str(v) if not isinstance(v, int) else v
                for k, v in contracts.burn_down(obj).items()}


class ContractViewSet(ScopedMixin, viewsets.ModelViewSet):
    queryset = Contract.objects.select_related("client")
    serializer_class = ContractSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    permissions = {"GET": VIEW, "POST": MANAGE, "PATCH": MANAGE}
    filterset_fields = ["client", "kind", "is_active"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        try:
            serializer.instance = contracts.create_contract(actor=self.request.user, **data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        if "client" in data and data.pop("client") != serializer.instance.client:
            raise exceptions.ValidationError({"client": ["A contract cannot change client."]})
        try:
            serializer.instance = contracts.update_contract(
                actor=self.request.user, contract=serializer.instance, **data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc


class BillingLineSerializer(serializers.ModelSerializer):
    client_name = serializers.CharField(source="client.name", read_only=True)

    class Meta:
        model = BillingLine
        fields = ["id", "run", "client", "client_name", "contract", "kind", "description",
                  "quantity", "unit_price", "amount", "evidence", "position"]
        read_only_fields = fields


class BillingLineViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Invoice lines with their evidence (never edited: recompute a draft run instead)."""

    queryset = BillingLine.objects.select_related("client", "run")
    serializer_class = BillingLineSerializer
    permissions = {"GET": VIEW}
    filterset_fields = ["run", "client", "contract", "kind"]


class BillingRunSerializer(serializers.ModelSerializer):
    period = serializers.CharField(write_only=True, help_text="YYYY-MM")
    month = serializers.SerializerMethodField()
    lines = serializers.SerializerMethodField()

    class Meta:
        model = BillingRun
        fields = ["id", "period", "month", "period_start", "period_end", "status", "total",
                  "supersedes", "created_by", "created_at", "computed_at", "approved_by",
                  "approved_at", "lines"]
        read_only_fields = ["period_start", "period_end", "status", "total", "supersedes",
                            "created_by", "created_at", "computed_at", "approved_by",
                            "approved_at"]

    def get_month(self, obj) -> str:
        return f"{obj.period_start:%Y-%m}"

    def get_lines(self, obj) -> int:
        return obj.lines.count()


def _run_action(func, **kwargs):
    try:
        return func(**kwargs)
    except DjangoValidationError as exc:
        if "locked" in " ".join(exc.messages):
            raise Locked(exc.messages[0]) from exc
        raise _django_errors(exc) from exc


class BillingRunViewSet(viewsets.ModelViewSet):
    """Billing runs per month. A draft is recomputed or approved; approval locks it (409 on
    any later change) and supersedes the month's earlier approved run."""

    queryset = BillingRun.objects.all()
    serializer_class = BillingRunSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]
    permissions = {"GET": VIEW, "POST": MANAGE, "DELETE": MANAGE}
    filterset_fields = ["status"]

    def create(self, request, *args, **kwargs):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = _run_action(billing.create_run, actor=request.user,
                          period=body.validated_data["period"])
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        _run_action(billing.delete_run, actor=self.request.user, run=instance)

    @extend_schema(request=None, responses={200: BillingRunSerializer})
    @action(detail=True, methods=["post"])
    def recompute(self, request, pk=None):
        run = _run_action(billing.recompute_run, actor=request.user, run=self.get_object())
        return Response(self.get_serializer(run).data)

    @extend_schema(request=None, responses={200: BillingRunSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        run = _run_action(billing.approve_run, actor=request.user, run=self.get_object())
        return Response(self.get_serializer(run).data)

    def _lines(self, run):
        return scoped(BillingLine.objects.filter(run=run), self.request.user) \
            .select_related("client", "contract")

    def _download(self, body: str, run: BillingRun, ext: str, ctype: str) -> HttpResponse:
        response = HttpResponse(body, content_type=ctype)
        state = "" if run.status == RunStatus.APPROVED else f"-{run.status}"
        response["Content-Disposition"] = (
            f'attachment; filename="billing-{run.period_start:%Y-%m}-run{run.pk}{state}.{ext}"')
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="export-csv")
    def export_csv(self, request, pk=None):
        run = self.get_object()
        return self._download(billing.export_csv(run, self._lines(run)), run, "csv",
                              "text/csv; charset=utf-8")

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="export-json")
    def export_json(self, request, pk=None):
        run = self.get_object()
        return self._download(billing.export_json(run, self._lines(run)), run, "json",
                              "application/json")


def register(router) -> None:
    router.register("contracts", ContractViewSet, basename="contract")
    router.register("billing-runs", BillingRunViewSet, basename="billing-run")
    router.register("billing-lines", BillingLineViewSet, basename="billing-line")
