"""REST API of the SLAs (/api/v1): policies (each save a new version), clocks with breach
reasons, holidays and shared holiday calendars."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from watchkeeper.core.actions import create_object, delete_object
from watchkeeper.core.api.serializers import ScopedPrimaryKeyRelatedField as ScopedRelatedField
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.models import Client, User

from ..api import _django_errors
from ..billing.models import Contract
from . import actions as sla
from .choices import ClockState
from .models import Holiday, HolidayCalendar, SlaClock, SlaPolicy

VIEW, CHANGE, ADMIN = "tickets.view", "tickets.change", "tickets.admin"






class SlaPolicySerializer(serializers.ModelSerializer):
    client = ScopedRelatedField(queryset=Client.objects.all(), allow_null=True, required=False)
    contract = ScopedRelatedField(queryset=Contract.objects.all(), allow_null=True,
                                  required=False)
    escalate_to = ScopedRelatedField(
        queryset=User.objects.filter(is_active=True).exclude(role="client_user"),
        allow_null=True, required=False)

    class Meta:
        model = SlaPolicy
        fields = ["id", "scope", "version", "is_current", "name", "client", "contract",
                  "targets", "warning_percent", "escalate_to", "created_at"]
        read_only_fields = ["scope", "version", "is_current", "created_at"]


class SlaPolicyViewSet(ScopedMixin, viewsets.ModelViewSet):
    """SLA policies. POST writes a new version of the scope's policy (default, a client's,
    or a contract's); earlier versions stay readable as the clocks that used them name them.
    """

    queryset = SlaPolicy.objects.select_related("client", "contract").order_by("scope",
                                                                                "-version")
    serializer_class = SlaPolicySerializer
    http_method_names = ["get", "post", "head", "options"]
    permissions = {"GET": VIEW, "POST": ADMIN}
    filterset_fields = ["client", "contract", "is_current", "scope"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            serializer.instance = sla.save_policy(
                actor=self.request.user, name=data["name"], targets=data.get("targets") or {},
                client=data.get("client"), contract=data.get("contract"),
                warning_percent=data.get("warning_percent", 75),
                escalate_to=data.get("escalate_to"))
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc


class SlaClockSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(source="ticket.reference", read_only=True)
    remaining_seconds = serializers.SerializerMethodField()

    class Meta:
        model = SlaClock
        fields = ["id", "ticket", "reference", "metric", "policy", "priority",
                  "target_seconds", "state", "elapsed_seconds", "remaining_seconds",
                  "due_at", "warning_at", "met_at", "warned_at", "breached_at",
                  "escalated_to", "breach_reason", "breach_reason_by", "breach_reason_at",
                  "computed_at"]
        read_only_fields = fields

    def get_remaining_seconds(self, obj) -> int | None:
        cache = self.context.setdefault("calendars", {})
        return sla.remaining_seconds(obj, calendars_by_client=cache)


class BreachReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000)


class SlaClockViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    """SLA clocks of tickets (derived; read-only), and the breach reason a technician gives."""

    queryset = SlaClock.objects.select_related("ticket", "ticket__client").order_by(
        "due_at", "id")
    serializer_class = SlaClockSerializer
    permissions = {"GET": VIEW, "POST": CHANGE}
    filterset_fields = ["ticket", "metric", "state"]

    def get_queryset(self):
        qs = super().get_queryset()
        breached = self.request.query_params.get("breached")
        if breached in ("true", "1"):
            qs = qs.filter(breached_at__isnull=False)
        elif breached in ("false", "0"):
            qs = qs.filter(breached_at__isnull=True)
        if self.request.query_params.get("running") in ("true", "1"):
            qs = qs.filter(state=ClockState.RUNNING)
        return qs

    @extend_schema(request=BreachReasonSerializer, responses={200: SlaClockSerializer})
    @action(detail=True, methods=["post"], url_path="breach-reason")
    def breach_reason(self, request, pk=None):
        clock = self.get_object()
        body = BreachReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            clock = sla.record_breach_reason(actor=request.user, clock=clock,
                                             reason=body.validated_data["reason"])
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(SlaClockSerializer(clock).data)


class HolidaySerializer(serializers.ModelSerializer):
    client = ScopedRelatedField(queryset=Client.objects.all(), allow_null=True, required=False)
    calendar = ScopedRelatedField(queryset=HolidayCalendar.objects.all(),
                                                  allow_null=True, required=False)

    class Meta:
        model = Holiday
        fields = ["id", "client", "calendar", "date", "name"]

    def validate(self, data):
        if bool(data.get("client")) == bool(data.get("calendar")):
            raise serializers.ValidationError("Give either a client or a shared calendar.")
        return data


class HolidayViewSet(ScopedMixin, viewsets.ModelViewSet):
    """Holidays of a client or of a shared calendar: days with no business hours."""

    queryset = Holiday.objects.select_related("client", "calendar")
    serializer_class = HolidaySerializer
    http_method_names = ["get", "post", "delete", "head", "options"]
    permissions = {"GET": VIEW, "POST": ADMIN, "DELETE": ADMIN}
    filterset_fields = ["client", "calendar"]

    def perform_create(self, serializer):
        try:
            serializer.instance = create_object(actor=self.request.user, model=Holiday,
                                                **serializer.validated_data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc

    def perform_destroy(self, instance):
        delete_object(actor=self.request.user, obj=instance)


class HolidayCalendarSerializer(serializers.ModelSerializer):
    clients = ScopedRelatedField(queryset=Client.objects.all(), many=True, required=False)

    class Meta:
        model = HolidayCalendar
        fields = ["id", "name", "clients", "created_at"]
        read_only_fields = ["created_at"]


class HolidayCalendarViewSet(viewsets.ModelViewSet):
    """Shared holiday calendars (MSP-wide) and the clients that follow each."""

    queryset = HolidayCalendar.objects.prefetch_related("clients")
    serializer_class = HolidayCalendarSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]
    permissions = {"GET": ADMIN, "POST": ADMIN, "DELETE": ADMIN}

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        clients = data.pop("clients", [])
        with transaction.atomic():
            calendar = create_object(actor=self.request.user, model=HolidayCalendar, **data)
            calendar.clients.set(clients)
        serializer.instance = calendar

    def perform_destroy(self, instance):
        delete_object(actor=self.request.user, obj=instance)


def register(router) -> None:
    router.register("sla-policies", SlaPolicyViewSet, basename="sla-policy")
    router.register("sla-clocks", SlaClockViewSet, basename="sla-clock")
    router.register("holidays", HolidayViewSet, basename="holiday")
    router.register("holiday-calendars", HolidayCalendarViewSet, basename="holiday-calendar")
