"""REST API of the helpdesk (/api/v1): tickets (list with the same filters as the queue
page, create, change, entries, attachments, merge, bulk), queues, routing rules (with a
preview of a draft against past tickets), canned responses, notification templates,
custom fields, the inbound quarantine (with re-process) and CSAT results. Reads through
scoped(); writes through actions; every route declares its capability per method."""

from __future__ import annotations

import base64
import binascii

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from watchkeeper.core.api.serializers import IdInputField
from watchkeeper.core.api.serializers import ScopedPrimaryKeyRelatedField as ScopedRelatedField
from watchkeeper.core.api.views import ScopedMixin
from watchkeeper.core.converters import parse_id
from watchkeeper.core.models import Client, Contact
from watchkeeper.core.tenancy import visible_client_ids

from . import actions, attachments, routing, selectors
from .choices import Priority, Source, Status
from .events import ALERT_ACTIONS
from .mailin import intake as mailin
from .models import (
    Attachment,
    CannedResponse,
    ClientEmailDomain,
    CustomFieldDefinition,
    InboundMessage,
    NotificationTemplate,
    Queue,
    RoutingRule,
    Ticket,
    TicketEntry,
)

VIEW, CHANGE, ADMIN = "tickets.view", "tickets.change", "tickets.admin"


def _django_errors(exc: DjangoValidationError):
    return exceptions.ValidationError(
        exc.message_dict if hasattr(exc, "message_dict") else {"detail": exc.messages})




class StaffField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return selectors.technicians(self.context["request"].user)


class TicketSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    client = ScopedRelatedField(queryset=Client.objects.all(), allow_null=True, required=False)
    contact = ScopedRelatedField(queryset=Contact.objects.all(), allow_null=True,
                                 required=False)
    assignee = StaffField(allow_null=True, required=False)
    queue = ScopedRelatedField(queryset=Queue.objects.all(), allow_null=True,
                                               required=False)
    parent = ScopedRelatedField(queryset=Ticket.objects.all(), allow_null=True,
                                required=False)
    devices = ScopedRelatedField(many=True, read_only=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=60), required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)

    class Meta:
        model = Ticket
        fields = ["id", "reference", "client", "contact", "requester_email", "requester_name",
                  "subject", "description", "type", "impact", "urgency", "priority",
                  "matrix_version", "status", "queue", "assignee", "tags", "custom_fields",
                  "source", "parent", "merged_into", "devices", "origin_key", "created_at",
                  "updated_at", "first_responded_at", "resolved_at", "closed_at"]
        read_only_fields = ["status", "source", "merged_into", "origin_key", "matrix_version",
                            "created_at", "updated_at", "first_responded_at", "resolved_at",
                            "closed_at"]


class TicketChangeSerializer(TicketSerializer):
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    alert_action = serializers.ChoiceField(
        choices=ALERT_ACTIONS, required=False, write_only=True,
        help_text="Resolving or closing a ticket opened for a monitoring alert that is still "
                  "active: what happens to the alert — keep it, snooze it (snooze_minutes, "
                  "default 60) or resolve it too. Without it such a change is a 400 that "
                  "asks for it.")
    snooze_minutes = serializers.IntegerField(required=False, write_only=True, min_value=1,
                                              max_value=7 * 24 * 60)

    class Meta(TicketSerializer.Meta):
        fields = [*TicketSerializer.Meta.fields, "alert_action", "snooze_minutes"]
        read_only_fields = [f for f in TicketSerializer.Meta.read_only_fields if f != "status"]
        read_only_fields += ["requester_email", "requester_name", "description"]


class TicketEntrySerializer(serializers.ModelSerializer):
    original_mail = serializers.SerializerMethodField(
        help_text="Ids of the received messages this entry came from: download one at "
                  "/api/v1/tickets/<ticket>/original-mail/<id>/.")

    class Meta:
        model = TicketEntry
        fields = ["id", "kind", "is_public", "author", "author_label", "body", "changes",
                  "message_id", "in_reply_to", "created_at", "original_mail"]
        read_only_fields = fields

    def get_original_mail(self, entry) -> list[int]:
        return [m.pk for m in entry.inbound_messages.all()]


class TicketEntryCreateSerializer(serializers.Serializer):
    body = serializers.CharField()
    public = serializers.BooleanField(default=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)


class AttachmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attachment
        fields = ["id", "ticket", "entry", "filename", "declared_type", "content_type", "size",
                  "sha256", "created_at"]
        read_only_fields = fields


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(required=False)
    filename = serializers.CharField(required=False, max_length=255)
    content_base64 = serializers.CharField(required=False)
    entry = IdInputField(required=False)


class TicketMergeSerializer(serializers.Serializer):
    into = IdInputField(help_text="Id of the ticket to merge this one into.")


class TicketBulkSerializer(serializers.Serializer):
    ids = serializers.ListField(child=IdInputField(), max_length=500)
    assignee = IdInputField(required=False, allow_null=True)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    queue = IdInputField(required=False, allow_null=True)


class TicketViewSet(ScopedMixin, viewsets.ModelViewSet):
    """Tickets. List filters (same as the queue page): q, status (repeatable, or "open"),
    queue (id|none|triage), assignee (id|me|none), client, priority, type, tag, sort."""

    queryset = Ticket.objects.all()
    serializer_class = TicketSerializer
    filter_backends: list = []
    http_method_names = ["get", "post", "patch", "head", "options"]
    permissions = {"GET": VIEW, "POST": CHANGE, "PATCH": CHANGE}
    paginated_actions = ("entries",)  # its GET pages like a list (core/api/schema.py)

    def get_queryset(self):
        if self.action == "list":
            return selectors.filter_tickets(self.request.user,
                                            selectors.TicketQuery.from_params(
                                                self.request.query_params)) \
                .prefetch_related("devices")
        return super().get_queryset().select_related("client", "queue", "assignee") \
            .prefetch_related("devices")

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return TicketChangeSerializer
        return TicketSerializer

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        if data.get("client") is None and visible_client_ids(self.request.user) is not None:
            raise exceptions.ValidationError({"client": "Choose the ticket's client."})
        try:
            serializer.instance = actions.create_ticket(
                actor=self.request.user, source=Source.API, **data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        try:
            serializer.instance = actions.change_ticket(
                actor=self.request.user, ticket=serializer.instance, **data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc

    @extend_schema(methods=["GET"], responses=TicketEntrySerializer(many=True))
    @extend_schema(methods=["POST"], request=TicketEntryCreateSerializer,
                   responses={201: TicketEntrySerializer})
    @action(detail=True, methods=["get", "post"])
    def entries(self, request, pk=None):
        """The timeline (GET), or a public reply / internal note (POST)."""
        ticket = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(selectors.timeline(ticket))
            return self.get_paginated_response(TicketEntrySerializer(page, many=True).data)
        body = TicketEntryCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            entry = actions.add_entry(actor=request.user, ticket=ticket,
                                      body=body.validated_data["body"],
                                      public=body.validated_data["public"],
                                      set_status=body.validated_data.get("status"))
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(TicketEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses=AttachmentSerializer(many=True))
    @extend_schema(methods=["POST"], request=AttachmentUploadSerializer,
                   responses={201: AttachmentSerializer})
    @action(detail=True, methods=["get", "post"],
            parser_classes=[JSONParser, MultiPartParser, FormParser])
    def attachments(self, request, pk=None):
        """The ticket's attachments (GET), or upload one (POST: multipart `file`, or JSON
        `filename` + `content_base64`). Download: GET /api/v1/attachments/<id>/download/."""
        ticket = self.get_object()
        if request.method == "GET":
            return Response(AttachmentSerializer(ticket.attachments.all(), many=True).data)
        body = AttachmentUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data.get("file")
        if upload is not None:
            if upload.size > settings.ATTACHMENT_MAX_BYTES:
                raise exceptions.ValidationError({"file": "The file is over the size limit."})
            data, filename, declared = upload.read(), upload.name, upload.content_type or ""
        elif body.validated_data.get("content_base64") and body.validated_data.get("filename"):
            try:
                data = base64.b64decode(body.validated_data["content_base64"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise exceptions.ValidationError({"content_base64": "Not base64."}) from exc
            filename, declared = body.validated_data["filename"], ""
        else:
            raise exceptions.ValidationError({"file": "Send a file, or filename and "
                                                      "content_base64."})
        entry = None
        if body.validated_data.get("entry"):
            entry = get_object_or_404(ticket.entries.all(), pk=body.validated_data["entry"])
        try:
            attachment = actions.attach_file(actor=request.user, ticket=ticket, entry=entry,
                                             filename=filename, declared_type=declared,
                                             data=data)
        except attachments.AttachmentRefused as exc:
            raise exceptions.ValidationError({"file": str(exc)}) from exc
        return Response(AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "message/rfc822"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path="original-mail/<id:inbound>")
    def original_mail(self, request, pk=None, inbound=None):
        """A message as received (.eml) that became an entry of this ticket."""
        ticket = self.get_object()
        row = get_object_or_404(InboundMessage, pk=inbound, ticket=ticket)
        return attachments.raw_mail_response(row)

    @extend_schema(request=TicketMergeSerializer, responses=TicketSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        """Merge this ticket into another (`into`); answers the target."""
        source = self.get_object()
        body = TicketMergeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        target = get_object_or_404(selectors.visible_tickets(request.user),
                                   pk=body.validated_data["into"])
        try:
            target = actions.merge_tickets(actor=request.user, source=source, target=target)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(TicketSerializer(target, context={"request": request}).data)

    @extend_schema(request=TicketBulkSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        """Assign, set status or queue on many tickets: a result per ticket."""
        body = TicketBulkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        fields = {}
        if "assignee" in data:
            fields["assignee"] = None
            if data["assignee"]:
                fields["assignee"] = selectors.technicians(request.user).filter(
                    pk=parse_id(data["assignee"])).first()
                if fields["assignee"] is None:
                    raise exceptions.ValidationError(
                        {"assignee": "No such person, or not one tickets can be assigned to."})
        if "status" in data:
            fields["status"] = data["status"]
        if "queue" in data:
            fields["queue"] = None
            if data["queue"]:
                fields["queue"] = Queue.objects.filter(pk=parse_id(data["queue"])).first()
                if fields["queue"] is None:
                    raise exceptions.ValidationError({"queue": "No such queue."})
        if not fields:
            raise exceptions.ValidationError({"detail": "Give assignee, status or queue."})
        tickets = list(selectors.visible_tickets(request.user).filter(pk__in=data["ids"]))
        found = {t.pk for t in tickets}
        results = actions.bulk_change(actor=request.user, tickets=tickets, **fields)
        results += [{"id": i, "ok": False, "error": "Not found."} for i in data["ids"]
                    if i not in found]
        return Response({"results": results})


class AttachmentViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Attachments of the tickets you can see; `download` serves the file (never inline)."""

    queryset = Attachment.objects.all()
    serializer_class = AttachmentSerializer
    filter_backends: list = []
    permissions = {"GET": VIEW}

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        return attachments.response(self.get_object())


class TicketQueueSerializer(serializers.ModelSerializer):
    class Meta:
        model = Queue
        fields = ["id", "name", "description", "is_triage", "created_at"]
        read_only_fields = ["created_at"]


class AdminCrudMixin:
    """MSP-wide helpdesk settings: read with tickets.view, write with tickets.admin."""

    permissions = {"GET": VIEW, "POST": ADMIN, "PUT": ADMIN, "PATCH": ADMIN, "DELETE": ADMIN}

    def _call(self, func, **kwargs):
        try:
            return func(actor=self.request.user, **kwargs)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc

    def perform_create(self, serializer):
        serializer.instance = self._call(actions.create_object, model=self.queryset.model,
                                         **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = self._call(actions.update_object, obj=serializer.instance,
                                         **serializer.validated_data)

    def perform_destroy(self, instance):
        self._call(actions.delete_object, obj=instance)


class QueueViewSet(AdminCrudMixin, viewsets.ModelViewSet):
    queryset = Queue.objects.all()
    serializer_class = TicketQueueSerializer
    filter_backends: list = []


class RoutingRuleSerializer(serializers.ModelSerializer):
    set_assignee = StaffField(allow_null=True, required=False)

    class Meta:
        model = RoutingRule
        fields = ["id", "name", "position", "is_active", "match_all", "conditions",
                  "set_queue", "set_assignee", "set_priority", "add_tags", "stop", "version",
                  "created_at", "updated_at"]
        read_only_fields = ["version", "created_at", "updated_at"]

    def validate_conditions(self, value):
        try:
            return routing.validate_conditions(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


class RulePreviewSerializer(serializers.Serializer):
    limit = serializers.IntegerField(default=200, min_value=1, max_value=2000)


class RuleViewSet(AdminCrudMixin, viewsets.ModelViewSet):
    """Routing rules, in evaluation order. `preview` evaluates a draft (the same body as a
    create) against the last `limit` tickets you can see, without saving it."""

    queryset = RoutingRule.objects.all()
    serializer_class = RoutingRuleSerializer
    filter_backends: list = []

    def perform_create(self, serializer):
        serializer.instance = self._call(actions.create_rule, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = self._call(actions.update_rule, rule=serializer.instance,
                                         **serializer.validated_data)

    def perform_destroy(self, instance):
        self._call(actions.delete_rule, rule=instance)

    @extend_schema(request=RoutingRuleSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["post"])
    def preview(self, request):
        draft_in = RoutingRuleSerializer(data=request.data, context={"request": request})
        draft_in.is_valid(raise_exception=True)
        limit = RulePreviewSerializer(data=request.query_params)
        limit.is_valid(raise_exception=True)
        draft = RoutingRule(**draft_in.validated_data)
        past = selectors.visible_tickets(request.user).order_by("-created_at")[
            :limit.validated_data["limit"]]
        rows = routing.preview(draft, past)
        return Response({"evaluated": len(rows),
                         "matched": [{"id": r["id"], "reference": r["reference"],
                                      "subject": r["subject"]} for r in rows if r["matches"]]})


class CannedResponseSerializer(serializers.ModelSerializer):
    class Meta:
        model = CannedResponse
        fields = ["id", "title", "body", "is_active", "created_at"]
        read_only_fields = ["created_at"]


class CannedViewSet(AdminCrudMixin, viewsets.ModelViewSet):
    queryset = CannedResponse.objects.all()
    serializer_class = CannedResponseSerializer
    filter_backends: list = []


class NotificationTemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = NotificationTemplate
        fields = ["id", "kind", "version", "subject", "body", "variables", "is_current",
                  "created_at"]
        read_only_fields = ["version", "variables", "is_current", "created_at"]
        validators: list = []  # every save is a new version; the action numbers it


class TemplateViewSet(viewsets.ModelViewSet):
    """Notification templates: every save is a new version, validated first (only the
    documented variables; see docs/helpdesk.md)."""

    queryset = NotificationTemplate.objects.all()
    serializer_class = NotificationTemplateSerializer
    filter_backends: list = []
    http_method_names = ["get", "post", "head", "options"]
    permissions = {"GET": VIEW, "POST": ADMIN}

    def perform_create(self, serializer):
        try:
            serializer.instance = actions.save_template(actor=self.request.user,
                                                        **serializer.validated_data)
        except DjangoValidationError as exc:
            raise exceptions.ValidationError({"body": exc.messages}) from exc


class CustomFieldSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomFieldDefinition
        fields = ["id", "key", "version", "label", "field_type", "choices", "required",
                  "is_current", "references", "created_at"]
        read_only_fields = ["version", "is_current", "references", "created_at"]
        validators: list = []  # keys repeat across versions; the action numbers them


class CustomFieldViewSet(viewsets.ModelViewSet):
    """Custom field definitions; POST with an existing key writes its next version."""

    queryset = CustomFieldDefinition.objects.all()
    serializer_class = CustomFieldSerializer
    filter_backends: list = []
    http_method_names = ["get", "post", "head", "options"]
    permissions = {"GET": VIEW, "POST": ADMIN}

    def perform_create(self, serializer):
        try:
            serializer.instance = actions.define_custom_field(actor=self.request.user,
                                                              **serializer.validated_data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc


class InboundMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = InboundMessage
        fields = ["id", "state", "reason", "size", "channel", "envelope_from", "envelope_to",
                  "subject", "message_id", "content_hash", "received_at", "processed_at",
                  "raw_purged_at", "ticket", "entry"]
        read_only_fields = fields


class InboundReprocessSerializer(serializers.Serializer):
    force = serializers.BooleanField(default=False, help_text="Process an ignored message "
                                                              "past the auto-reply checks.")


class InboundViewSet(viewsets.ReadOnlyModelViewSet):
    """Received mail kept because it did not become a ticket entry (state quarantined or
    ignored), with the reason. `raw` downloads the message; `reprocess` runs it again."""

    queryset = InboundMessage.objects.defer("raw")
    serializer_class = InboundMessageSerializer
    filter_backends: list = []
    permissions = {"GET": ADMIN, "POST": ADMIN}

    def get_queryset(self):
        qs = super().get_queryset()
        state = self.request.query_params.get("state")
        return qs.filter(state=state) if state else qs

    @extend_schema(responses={(200, "message/rfc822"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def raw(self, request, pk=None):
        return attachments.raw_mail_response(self.get_object())

    @extend_schema(request=InboundReprocessSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        row = self.get_object()
        body = InboundReprocessSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            outcome = mailin.reprocess(actor=request.user, inbound=row,
                                       force=body.validated_data["force"])
        except mailin.Unprocessable as exc:
            raise exceptions.ValidationError({"detail": str(exc)}) from exc
        return Response({"outcome": outcome.kind, "reason": outcome.reason,
                         "ticket": getattr(outcome.ticket, "pk", None)})


class InboundSubmitView(APIView):
    """POST a raw RFC 5322 message (body: message/rfc822 bytes, or JSON {"raw_base64"}):
    processed exactly like mail received over SMTP. For gateways that relay by HTTP."""

    permissions = {"POST": ADMIN}

    @extend_schema(request=OpenApiTypes.OBJECT, responses={202: OpenApiTypes.OBJECT})
    def post(self, request):
        if request.content_type == "message/rfc822":
            raw = request.body
        else:
            try:
                raw = base64.b64decode(request.data.get("raw_base64", ""), validate=True)
            except (binascii.Error, ValueError, AttributeError) as exc:
                raise exceptions.ValidationError({"raw_base64": "Not base64."}) from exc
        outcome = mailin.receive(raw, channel="api")
        return Response({"outcome": outcome.kind, "reason": outcome.reason,
                         "ticket": getattr(outcome.ticket, "pk", None)},
                        status=status.HTTP_202_ACCEPTED)


class ClientMailDomainSerializer(serializers.ModelSerializer):
    client = ScopedRelatedField(queryset=Client.objects.all())

    class Meta:
        model = ClientEmailDomain
        fields = ["id", "client", "domain", "created_at"]
        read_only_fields = ["created_at"]

    def validate_domain(self, value: str) -> str:
        value = value.strip().lower().lstrip("@")
        if "." not in value or "@" in value or " " in value:
            raise serializers.ValidationError("A mail domain such as example.com.")
        return value


class DomainViewSet(ScopedMixin, AdminCrudMixin, viewsets.ModelViewSet):
    """Mail domains of clients: senders at them are matched to that client."""

    queryset = ClientEmailDomain.objects.select_related("client")
    serializer_class = ClientMailDomainSerializer
    filter_backends: list = []
    http_method_names = ["get", "post", "delete", "head", "options"]
    permissions = {"GET": VIEW, "POST": ADMIN, "DELETE": ADMIN}


class CsatView(APIView):
    """CSAT results: count and average score overall, per technician and per client."""

    permissions = {"GET": VIEW}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response(selectors.csat_results(request.user))


def register(router) -> None:
    router.register("tickets", TicketViewSet, basename="ticket")
    router.register("ticket-attachments", AttachmentViewSet, basename="ticket-attachment")
    router.register("ticket-queues", QueueViewSet, basename="ticket-queue")
    router.register("routing-rules", RuleViewSet, basename="routing-rule")
    router.register("canned-responses", CannedViewSet, basename="canned-response")
    router.register("notification-templates", TemplateViewSet,
                    basename="notification-template")
    router.register("ticket-fields", CustomFieldViewSet, basename="ticket-field")
    router.register("inbound-mail", InboundViewSet, basename="inbound-mail")
    router.register("client-mail-domains", DomainViewSet, basename="client-mail-domain")


def extra_urls():
    from django.urls import path

    return [
        path("inbound-mail/submit/", InboundSubmitView.as_view(), name="inbound-mail-submit"),
        path("csat/", CsatView.as_view(), name="csat-results"),
    ]

