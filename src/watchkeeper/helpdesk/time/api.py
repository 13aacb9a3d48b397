"""REST API of time on tickets (/api/v1): work types, time entries and server-side timers."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from watchkeeper.core.api.serializers import ScopedPrimaryKeyRelatedField as ScopedRelatedField
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.permissions import has_capability

from ..api import _django_errors
from ..models import Ticket
from . import actions as timeentries
from .models import TimeEntry, Timer, WorkType

VIEW, CHANGE = "tickets.view", "tickets.change"


class Locked(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Locked by an approved billing run."
    default_code = "locked"


class WorkTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkType
        fields = ["id", "name", "default_rate", "is_active", "created_at"]
        read_only_fields = ["created_at"]


class WorkTypeViewSet(viewsets.ModelViewSet):
    """Kinds of work with their default hourly rate (MSP-wide)."""

    queryset = WorkType.objects.all()
    serializer_class = WorkTypeSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    permissions = {"GET": VIEW, "POST": "billing.manage", "PATCH": "billing.manage"}

    def perform_create(self, serializer):
        serializer.instance = timeentries.save_work_type(actor=self.request.user,
                                                         **serializer.validated_data)

    def perform_update(self, serializer):
        data = {"name": serializer.instance.name,
                "default_rate": serializer.instance.default_rate,
                "is_active": serializer.instance.is_active, **serializer.validated_data}
        serializer.instance = timeentries.save_work_type(
            actor=self.request.user, work_type=serializer.instance, **data)


class TimeEntrySerializer(serializers.ModelSerializer):
    ticket = ScopedRelatedField(queryset=Ticket.objects.all())
    work_type = ScopedRelatedField(queryset=WorkType.objects.all())
    technician_name = serializers.CharField(source="technician.display_name", read_only=True)
    locked = serializers.SerializerMethodField()

    class Meta:
        model = TimeEntry
        fields = ["id", "ticket", "technician", "technician_name", "work_type", "date",
                  "minutes", "billable", "rate", "note", "started_at", "billed_run",
                  "locked", "created_at", "updated_at"]
        read_only_fields = ["technician", "started_at", "billed_run", "created_at",
                            "updated_at"]
        extra_kwargs = {"date": {"required": False}}

    def get_locked(self, obj) -> bool:
        return obj.billed_run_id is not None


class TimeEntryViewSet(ScopedMixin, viewsets.ModelViewSet):
    """Time logged on tickets. Technicians change their own entries; entries billed by an
    approved run are locked (409)."""

    queryset = TimeEntry.objects.select_related("ticket", "technician", "work_type")
    serializer_class = TimeEntrySerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    permissions = {"GET": VIEW, "POST": CHANGE, "PATCH": CHANGE, "DELETE": CHANGE}
    filterset_fields = ["ticket", "technician", "billable", "date", "billed_run"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        try:
            serializer.instance = timeentries.log_time(actor=self.request.user, **data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc

    def _mine_or_manager(self, entry):
        if entry.technician_id != self.request.user.pk and not has_capability(
                self.request.user, "billing.manage"):
            raise exceptions.PermissionDenied("Only the technician who logged it (or billing "
                                              "managers) may change this entry.")
        if entry.billed_run_id is not None:

            raise Locked()

    def perform_update(self, serializer):
        self._mine_or_manager(serializer.instance)
        data = dict(serializer.validated_data)
        if "ticket" in data and data.pop("ticket") != serializer.instance.ticket:
            raise exceptions.ValidationError({"ticket": ["Time cannot move to another ticket."]})
        try:
            serializer.instance = timeentries.update_time_entry(
                actor=self.request.user, entry=serializer.instance, **data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc

    def perform_destroy(self, instance):
        self._mine_or_manager(instance)
        timeentries.delete_time_entry(actor=self.request.user, entry=instance)


class TimerSerializer(serializers.ModelSerializer):
    ticket = ScopedRelatedField(queryset=Ticket.objects.all())
    work_type = ScopedRelatedField(queryset=WorkType.objects.all(),
                                                   allow_null=True, required=False)
    elapsed_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Timer
        fields = ["id", "ticket", "technician", "work_type", "note", "started_at",
                  "elapsed_seconds"]
        read_only_fields = ["technician", "started_at"]

    def get_elapsed_seconds(self, obj) -> int:
        from django.utils import timezone

        return int((timezone.now() - obj.started_at).total_seconds())


class StopTimerSerializer(serializers.Serializer):
    work_type = ScopedRelatedField(queryset=WorkType.objects.all(),
                                                   required=False, allow_null=True)
    note = serializers.CharField(required=False, allow_blank=True)
    billable = serializers.BooleanField(default=True)


class TimerViewSet(ScopedMixin, viewsets.ModelViewSet):
    """The caller's own running timers: start (POST), stop (writes a time entry), discard."""

    queryset = Timer.objects.select_related("ticket", "work_type")
    serializer_class = TimerSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]
    permissions = {"GET": VIEW, "POST": CHANGE, "DELETE": CHANGE}

    def get_queryset(self):
        return super().get_queryset().filter(technician_id=self.request.user.pk)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            timer = timeentries.start_timer(actor=request.user, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(TimerSerializer(timer).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=StopTimerSerializer, responses={201: TimeEntrySerializer})
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        timer = self.get_object()
        body = StopTimerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            entry = timeentries.stop_timer(actor=request.user, timer=timer,
                                           **body.validated_data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(TimeEntrySerializer(entry, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        timeentries.discard_timer(actor=self.request.user, timer=instance)


def register(router) -> None:
    router.register("work-types", WorkTypeViewSet, basename="work-type")
    router.register("time-entries", TimeEntryViewSet, basename="time-entry")
    router.register("timers", TimerViewSet, basename="timer")
