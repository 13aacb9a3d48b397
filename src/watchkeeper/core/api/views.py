"""ViewSets of the core REST API (/api/v1) and the project's 404/500 handlers.

Every viewset reads through `scoped()` (ScopedMixin) and writes through the action
functions (ActionWritesMixin), so an object of another tenant is a 404 and every write has
its audit row and event. Each declares `permissions`, a capability per HTTP method.
"""

from __future__ import annotations

import secrets

from django.db.models import Prefetch
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView, ListAPIView, get_object_or_404
from rest_framework.response import Response

from .. import actions, crypto, selectors, webhooks
from ..choices import DeliveryStatus
from ..models import (
    AuditEntry,
    Client,
    Contact,
    Event,
    EventDelivery,
    Site,
    WebhookDelivery,
    WebhookEndpoint,
)
from ..permissions import public
from ..tenancy import scoped
from . import filters, schema  # noqa: F401  (schema registers the token auth extension)
from .permissions import DeclaredMethodsMixin
from .problems import TITLES, Conflict
from .serializers import (
    AuditEntrySerializer,
    ClientSerializer,
    ContactSerializer,
    EventDeliverySerializer,
    EventSerializer,
    SearchResponseSerializer,
    SiteSerializer,
    WebhookCreatedSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
)


class ScopedMixin(DeclaredMethodsMixin):
    """Reads go through scoped(); unsupported methods answer 405 to a signed-in user."""

    def get_queryset(self):
        return scoped(super().get_queryset(), self.request.user)


class ActionWritesMixin:
    """Create, update and delete through core.actions (one transaction, audit, event)."""

    def create_instance(self, data: dict):
        return actions.create_object(actor=self.request.user, model=self.queryset.model,
                                     **data)

    def perform_create(self, serializer):
        serializer.instance = self.create_instance(dict(serializer.validated_data))

    def perform_update(self, serializer):
        serializer.instance = actions.update_object(
            actor=self.request.user, obj=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        actions.delete_object(actor=self.request.user, obj=instance)


_READ = "clients.view"
_CHANGE = "clients.change"


@extend_schema_view(
    list=extend_schema(summary="List clients"),
    create=extend_schema(summary="Create a client (owner, admin)"),
    destroy=extend_schema(summary="Delete a client with no sites or contacts left"),
)
class ClientViewSet(ScopedMixin, ActionWritesMixin, viewsets.ModelViewSet):
    queryset = Client.objects.all()
    serializer_class = ClientSerializer
    filterset_class = filters.ClientFilter
    search_fields = ["name", "slug", "notes"]
    ordering_fields = ["name", "created_at", "id"]
    ordering = ["name"]
    permissions = {"GET": _READ, "POST": "clients.manage", "PUT": _CHANGE, "PATCH": _CHANGE,
                   "DELETE": "clients.manage"}

    def create_instance(self, data: dict):
        return actions.create_client(actor=self.request.user, **data)


class SiteViewSet(ScopedMixin, ActionWritesMixin, viewsets.ModelViewSet):
    queryset = Site.objects.select_related("client").only(
        "id", "client_id", "client__name", "name", "address", "timezone", "notes",
        "created_at",
    )
    serializer_class = SiteSerializer
    filterset_class = filters.SiteFilter
    search_fields = ["name", "address", "client__name"]
    ordering_fields = ["name", "created_at", "id", "client__name"]
    ordering = ["client__name", "name"]
    permissions = {"GET": _READ, "POST": _CHANGE, "PUT": _CHANGE, "PATCH": _CHANGE,
                   "DELETE": _CHANGE}


class ContactViewSet(ScopedMixin, ActionWritesMixin, viewsets.ModelViewSet):
    queryset = Contact.objects.select_related("client", "site").only(
        "id", "client_id", "client__name", "site_id", "site__name", "name", "email", "phone",
        "title", "is_primary", "is_user", "created_at",
    )
    serializer_class = ContactSerializer
    filterset_class = filters.ContactFilter
    search_fields = ["name", "email", "phone", "title", "client__name"]
    ordering_fields = ["name", "email", "created_at", "id", "client__name"]
    ordering = ["client__name", "name"]
    permissions = {"GET": _READ, "POST": _CHANGE, "PUT": _CHANGE, "PATCH": _CHANGE,
                   "DELETE": _CHANGE}


class AuditViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The audit log (read-only: rows are only ever inserted by actions)."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    filterset_class = filters.AuditFilter
    search_fields = ["object_repr", "actor_label", "object_type"]
    ordering_fields = ["at", "id"]
    ordering = ["-at", "-id"]
    permissions = {"GET": "audit.view"}


class EventViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Outbox events with their per-handler deliveries."""

    lookup_value_converter = "uuid"

    queryset = Event.objects.prefetch_related(
        Prefetch("deliveries", queryset=EventDelivery.objects.order_by("id"))
    )
    serializer_class = EventSerializer
    filterset_class = filters.EventFilter
    search_fields = ["kind"]
    ordering_fields = ["created_at", "seq", "kind"]
    ordering = ["-created_at"]
    permissions = {"GET": "events.view"}


class DeliveryViewSet(ScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Deliveries of events to handlers; dead letters can be replayed."""

    queryset = EventDelivery.objects.select_related("event").only(
        "id", "event_id", "event__kind", "event__client_id", "handler", "status", "attempts",
        "next_attempt_at", "delivered_at", "last_error",
    )
    serializer_class = EventDeliverySerializer
    filterset_class = filters.EventDeliveryFilter
    search_fields = ["handler", "event__kind", "last_error"]
    ordering_fields = ["next_attempt_at", "id", "attempts"]
    ordering = ["-next_attempt_at", "-id"]
    permissions = {"GET": "events.view", "POST": "events.manage"}

    @extend_schema(request=None, responses={200: EventDeliverySerializer},
                   summary="Replay a dead letter")
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        delivery = self.get_object()
        if delivery.status != DeliveryStatus.DEAD:
            raise Conflict("Only dead letters can be replayed.")
        delivery = actions.replay_delivery(actor=request.user, delivery=delivery)
        return Response(self.get_serializer(delivery).data)


class WebhookViewSet(ScopedMixin, ActionWritesMixin, viewsets.ModelViewSet):
    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookSerializer
    filterset_class = filters.WebhookFilter
    search_fields = ["name", "url"]
    ordering_fields = ["name", "created_at", "id"]
    ordering = ["name"]
    permissions = {"GET": "webhooks.view", "POST": "webhooks.manage",
                   "PUT": "webhooks.manage", "PATCH": "webhooks.manage",
                   "DELETE": "webhooks.manage"}

    @extend_schema(responses={201: WebhookCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        secret = data.pop("secret", None) or secrets.token_urlsafe(32)
        endpoint = actions.create_webhook(actor=request.user, secret=secret, **data)
        body = dict(WebhookSerializer(endpoint, context=self.get_serializer_context()).data)
        body["secret"] = secret
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        secret = data.pop("secret", None)
        if secret:
            data["secret_enc"] = crypto.encrypt(secret, webhooks.SECRET_PURPOSE)
        serializer.instance = actions.update_object(
            actor=self.request.user, obj=serializer.instance, **data
        )


class WebhookDeliveryLogView(ScopedMixin, ListAPIView):
    """The delivery log of one webhook endpoint (every HTTP attempt, newest first)."""

    wk_model = WebhookEndpoint  # the URL names an endpoint; tests fill it with one
    queryset = WebhookDelivery.objects.select_related("event").only(
        "id", "endpoint_id", "event_id", "event__kind", "attempt", "at", "status_code",
        "success", "duration_ms", "error",
    )
    serializer_class = WebhookDeliverySerializer
    filterset_class = filters.WebhookDeliveryFilter
    search_fields = ["error"]
    ordering_fields = ["at", "id"]
    ordering = ["-at", "-id"]
    permissions = {"GET": "webhooks.view"}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return WebhookDelivery.objects.none()
        endpoint = get_object_or_404(scoped(WebhookEndpoint.objects.only("id"),
                                            self.request.user), pk=self.kwargs["webhook_pk"])
        return super().get_queryset().filter(endpoint=endpoint)


# --- Search across clients, sites and contacts --------------------------------------------

SEARCH_LIMIT = 20


class SearchView(ScopedMixin, GenericAPIView):
    """Global search (core.selectors.search, the same as the UI's search box): clients by
    name or slug, sites by name or address, contacts by name, e-mail, title or phone (the
    digits match however the number was typed), in every tenant the user may see, plus
    what other modules register (devices by name, serial, IP or MAC; see core.search)."""

    permissions = {"GET": _READ}
    queryset = Client.objects.none()  # for the schema; the view reads three models
    serializer_class = SearchResponseSerializer
    filter_backends: list = []
    pagination_class = None

    def get_queryset(self):  # not used for reads; present for the schema generator
        return Client.objects.none()

    @extend_schema(
        parameters=[OpenApiParameter(
            "q", str, required=True,
            description=f"At least {selectors.SEARCH_MIN_LENGTH} characters; text past "
                        f"{selectors.SEARCH_MAX_LENGTH} is not searched (`query` in the "
                        f"response shows what was).")],
        responses={200: SearchResponseSerializer},
        summary="Search clients, sites and contacts",
    )
    def get(self, request):
        q = selectors.normalize_search_query(request.query_params.get("q"))
        if len(q) < selectors.SEARCH_MIN_LENGTH:
            raise exceptions.ValidationError({"q": ["Enter at least two characters."]})
        found = selectors.search(request.user, q, limit=SEARCH_LIMIT)
        results = [*map(_client_result, found.clients), *map(_site_result, found.sites),
                   *map(_contact_result, found.contacts)]
        for _provider, items in found.groups:
            results.extend(items)
        return Response(SearchResponseSerializer({"query": found.query,
                                                  "results": results}).data)


def _client_result(client: Client) -> dict:
    return {"type": "client", "id": client.pk, "name": client.name, "client": client.pk,
            "client_name": client.name, "detail": "", "url": f"/api/v1/clients/{client.pk}/"}


def _site_result(site: Site) -> dict:
    return {"type": "site", "id": site.pk, "name": site.name, "client": site.client_id,
            "client_name": site.client.name, "detail": site.address,
            "url": f"/api/v1/sites/{site.pk}/"}


def _contact_result(contact: Contact) -> dict:
    return {"type": "contact", "id": contact.pk, "name": contact.name,
            "client": contact.client_id, "client_name": contact.client.name,
            "detail": contact.email or contact.phone, "title": contact.title,
            "url": f"/api/v1/contacts/{contact.pk}/"}


# --- Error pages: problem+json under /api/, HTML elsewhere --------------------------------

def _problem_json(request, code: int, detail: str) -> JsonResponse:
    return JsonResponse(
        {"type": "about:blank", "title": TITLES.get(code, "Server error"), "status": code,
         "detail": detail, "instance": request.path},
        status=code, content_type="application/problem+json",
    )


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


@public
def not_found(request, exception=None):
    if _is_api(request):
        return _problem_json(request, 404, "No such API resource.")
    body = loader.render_to_string("404.html", {"path": request.path}, request=request)
    return HttpResponse(body, status=404)


@public
def server_error(request):
    from ..unavailable import response_for_current_exception

    unavailable = response_for_current_exception(request)
    if unavailable is not None:  # the database is down or full: 503 + Retry-After
        return unavailable
    if _is_api(request):
        return _problem_json(request, 500, "The server failed to handle this request; "
                                           "the error has been logged.")
    try:
        # No request context: a context processor may be what failed.
        body = loader.render_to_string("500.html")
    except Exception:  # the error page itself must never fail
        body = "<h1>Server error</h1><p>The error has been logged.</p>"
    return HttpResponse(body, status=500)


@public
def bad_request(request, exception=None):
    """Django's own 400 (a SuspiciousOperation: more than DATA_UPLOAD_MAX_NUMBER_FIELDS form
    fields, a body past DATA_UPLOAD_MAX_MEMORY_SIZE, a malformed multipart body)."""
    if _is_api(request):
        return _problem_json(request, 400, "The request could not be read: too many form "
                                           "fields, too large, or malformed.")
    return defaults.bad_request(request, exception)
